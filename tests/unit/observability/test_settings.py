"""``metrics.tenant_labels`` and ``metrics.max_tenant_labels``: what tenants may be labels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError
from gateway.observability.metrics import Metrics
from gateway.observability.settings import MetricsSettings


class TestMetricsSettings:
    def test_by_default_no_tenant_has_a_label(self):
        s = MetricsSettings()
        assert s.listed == () and not s.any_tenant

    @pytest.mark.parametrize(
        ("over", "message"),
        [
            ({"tenant_labels": ("a", "b", "c"), "max_tenant_labels": 2}, "more than max"),
            ({"tenant_labels": ("other",)}, "label of unlisted tenants"),
            ({"tenant_labels": ("acme", "acme")}, "listed twice"),
            ({"tenant_labels": ("no spaces",)}, "not a tenant name"),
            ({"max_tenant_labels": 5000}, "less than or equal to 1000"),
        ],
        ids=["over-the-cap", "overflow-name", "duplicate", "bad-name", "cap-too-large"],
    )
    def test_refused(self, over, message):
        with pytest.raises(ValidationError, match=message):
            MetricsSettings(**over)

    def test_read_from_the_file_and_the_environment(self, tmp_path, monkeypatch):
        path = tmp_path / "gateway.yaml"
        path.write_text("metrics:\n  tenant_labels: [acme, globex]\n  max_tenant_labels: 5\n")
        assert load_settings(path).metrics.listed == ("acme", "globex")
        monkeypatch.setenv("GATEWAY_METRICS__TENANT_LABELS", '["acme", "*"]')
        settings = load_settings(path)
        assert settings.metrics.any_tenant and settings.metrics.max_tenant_labels == 5

    def test_check_config_names_the_field(self, tmp_path):
        path = tmp_path / "gateway.yaml"
        path.write_text("metrics:\n  tenant_labels: [other]\n")
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert any(p.startswith("metrics.tenant_labels") for p, _ in info.value.problems)


class TestTenantLabels:
    def samples(self, m: Metrics) -> dict[str, float]:
        return {
            s.labels["tenant"]: s.value
            for fam in m.registry.collect()
            if fam.name == "gateway_tenant_requests"
            for s in fam.samples
            if s.name.endswith("_total")
        }

    def test_listed_tenants_are_exported_from_the_start_and_others_are_other(self):
        m = Metrics()
        m.configure_tenants(MetricsSettings(tenant_labels=("acme",)))
        assert self.samples(m) == {"acme": 0, "other": 0}
        for tenant in ("acme", "globex", "initech", "acme"):
            m.tenant_request(tenant)
        assert self.samples(m) == {"acme": 2, "other": 2}

    def test_any_tenant_fills_the_cap_first_seen_first(self):
        m = Metrics()
        m.configure_tenants(MetricsSettings(tenant_labels=("acme", "*"), max_tenant_labels=3))
        for tenant in ("b", "c", "d", "e", "b", "acme"):
            m.tenant_request(tenant)
        assert self.samples(m) == {"acme": 1, "b": 2, "c": 1, "other": 2}

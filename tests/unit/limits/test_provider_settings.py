"""Pacing, circuit-breaker and retry-budget settings: defaults, limits, the shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError
from gateway.limits.provider_resilience import (
    CircuitBreakerSettings,
    PacingSettings,
    RetryBudgetSettings,
)

REPO = Path(__file__).resolve().parents[3]

PROVIDER = """
providers:
  - name: modzy-eu
    type: modzy
    base_url: https://modzy.example/api
    credential: {env: MODZY_TEST_KEY}
"""


def test_defaults_pace_nothing_but_protect():
    assert PacingSettings().requests is None
    assert PacingSettings().max_wait_seconds == 10
    breaker = CircuitBreakerSettings()
    assert (breaker.enabled, breaker.failures, breaker.open_seconds) == (True, 5, 30)
    assert breaker.max_open_seconds == 300
    assert RetryBudgetSettings().ratio == 0.2 and RetryBudgetSettings().min_retries == 3


@pytest.mark.parametrize(
    "bad",
    [
        lambda: PacingSettings(requests=0),
        lambda: PacingSettings(burst=-1),
        lambda: PacingSettings(unknown=1),  # type: ignore[call-arg]
        lambda: CircuitBreakerSettings(failures=0),
        lambda: CircuitBreakerSettings(open_seconds=60, max_open_seconds=30),
        lambda: RetryBudgetSettings(ratio=1.5),
    ],
    ids=[
        "zero-rate",
        "negative-burst",
        "unknown-field",
        "zero-failures",
        "cap-below-base",
        "ratio",
    ],
)
def test_nonsense_is_refused(bad):
    with pytest.raises(ValidationError):
        bad()


def test_a_bad_value_in_the_file_names_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MODZY_TEST_KEY", "k")
    path = tmp_path / "gateway.yaml"
    path.write_text(PROVIDER + "    pacing: {requests: -5}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert [p for p, _ in info.value.problems] == ["providers[modzy-eu].pacing.requests"]


def test_the_example_configuration_paces_its_first_provider(monkeypatch):
    for var in ("MODZY_EU", "VODY", "ANNOLAB", "LLAMA_CLOUD", "WOODWIDE"):
        monkeypatch.setenv(f"{var}_API_KEY", "set-by-test")
    settings = load_settings(REPO / "config" / "gateway.example.yaml")
    modzy = settings.providers[0]
    assert modzy.pacing.requests == 10 and modzy.circuit_breaker.failures == 5
    assert settings.request_deadline_seconds == 60

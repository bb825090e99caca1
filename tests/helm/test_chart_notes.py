"""NOTES.txt renders for every scenario and says how to reach the gateway, its keys and metrics.

`helm template` skips NOTES.txt and `helm install --dry-run` wants a cluster, so the test
renders a copy of the chart in which the notes are wrapped in a ConfigMap.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helm import chart


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("chart") / "gateway"
    shutil.copytree(chart.CHART, copy)
    notes = (copy / "templates" / "NOTES.txt").read_text()
    (copy / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + "{{- end }}\n"
    )
    (copy / "templates" / "notes-render.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include "test.notes" . | quote }}\n'
    )
    return copy


def notes(notes_chart: Path, name: str, api_versions: tuple[str, ...] = ()) -> str:
    result = chart.template(
        (chart.SCENARIOS[name],), api_versions=api_versions, chart_dir=notes_chart
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    text: str = chart.find(docs, "ConfigMap", "notes")["data"]["notes"]
    return text


@pytest.mark.parametrize("name", sorted(chart.SCENARIOS))
def test_notes_render_for_every_scenario(notes_chart, name):
    text = notes(notes_chart, name, (chart.MONITORING_API,))
    assert "gw-gateway" in text
    assert "helm test gw --namespace inference" in text
    assert "/metrics" in text
    assert "<no value>" not in text


def test_notes_point_at_port_forward_and_the_api_key_secret(notes_chart):
    text = notes(notes_chart, "minimal")
    assert "port-forward service/gw-gateway 8080:80" in text
    assert "get secret gw-gateway" in text and "api-keys" in text
    assert "WARNING" not in text


def test_notes_use_the_ingress_host_when_there_is_one(notes_chart):
    text = notes(notes_chart, "production", (chart.MONITORING_API,))
    assert "https://inference.example.internal/v1/jobs" in text
    assert "Bearer JWTs issued by https://login.example.internal/" in text
    assert "ServiceMonitor gw-gateway scrapes it every 15s" in text


def test_notes_warn_when_service_monitor_cannot_be_created(notes_chart):
    text = notes(notes_chart, "production")
    assert "does not serve monitoring.coreos.com/v1" in text


def test_notes_warn_about_the_throwaway_redis(notes_chart):
    text = notes(notes_chart, "tryout")
    assert "redis.internal runs one Redis with no persistence" in text
    assert "api_keys in ConfigMap gw-gateway" in text


def test_notes_say_where_metrics_live_when_moved_off_the_api_port(notes_chart):
    text = notes(notes_chart, "production", (chart.MONITORING_API,))
    assert 'GET /metrics on port "metrics" (9102)' in text
    assert "gw-gateway-metrics" in text
    assert "the Ingress do not serve it" in text


def test_the_notes_warn_that_an_internal_redis_without_persistence_loses_jobs(notes_chart):
    throwaway = notes(notes_chart, "tryout")
    assert "a restart of it loses every job" in throwaway
    assert "redis.internal.persistence.enabled" in throwaway
    durable = notes(notes_chart, "durable-redis")
    assert "a restart of it loses every job" not in durable
    assert "append-only file on a volume" in durable

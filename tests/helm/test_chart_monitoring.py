"""ServiceMonitor, PrometheusRule and the Grafana dashboard point at metrics that exist.

Alert and panel queries are checked against the gateway's own registry
(gateway/observability/metrics.py): every gateway_* series they read is exported, and every
label they group or filter by is either one of that metric's labels or one Prometheus adds at
scrape time.
"""

from __future__ import annotations

import functools
import json
import re

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from gateway.observability.metrics import Metrics
from tests.helm import chart

ALERTS = chart.CHART / "files" / "alerts.yaml"
DASHBOARD = chart.CHART / "files" / "dashboard.json"
# Labels the scrape adds (target and Kubernetes service discovery) and the histogram's own.
SCRAPE_LABELS = {"namespace", "job", "pod", "instance", "service", "container", "le"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


@functools.cache
def _exported() -> dict[str, set[str]]:
    """Series name -> label names, for every series the gateway's registry can export."""
    series: dict[str, set[str]] = {}
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    for collector in Metrics().registry._collector_to_names:
        if isinstance(collector, MetricWrapperBase):
            # Labelled metrics show no samples until observed, so read their declaration.
            labels = set(collector._labelnames)
            for suffix in suffixes[str(collector._type)]:
                series[collector._name + suffix] = labels
        else:  # process, platform and gc collectors: their samples carry their labels
            for family in collector.collect():
                for sample in family.samples:
                    series.setdefault(sample.name, set()).update(sample.labels)
    return series


def check_query(expr: str) -> None:
    exported = _exported()
    # Series are named before a {matcher} or a [range], or carry an exporter's prefix.
    used = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
    used |= set(re.findall(r"\b(?:gateway|process|python)_[a-z0-9_]+\b", expr))
    assert used, f"no metric in {expr!r}"
    unknown = used - exported.keys()
    assert not unknown, f"{expr!r} reads series the gateway does not export: {unknown}"
    # label_replace(v, "dst", "replacement", "src", "regex") adds the label dst.
    created = set(re.findall(r',\s*"([a-z_]+)",\s*"[^"]*",\s*"[a-z_]+",\s*"[^"]*"\s*\)', expr))
    allowed = set().union(*(exported[m] for m in used)) | SCRAPE_LABELS | created
    grouped = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }
    matched = set(re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)", expr))
    assert (grouped | matched) - PROMQL_WORDS <= allowed, expr


def _rules():
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_alert_reads_exported_metrics(rule):
    check_query(rule["expr"])
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_prometheus_rule_carries_the_alerts_file():
    docs = chart.scenario("production")
    rule = chart.find(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_service_monitor_scrapes_the_services_http_port():
    # Production moves /metrics to its own port (tests/helm/test_chart_metrics_port.py);
    # without metrics.port the API Service's port http is the one scraped.
    docs = chart.scenario("production", "metrics.port=null")
    monitor = chart.find(docs, "ServiceMonitor")
    service = chart.find(docs, "Service", f"{chart.RELEASE}-gateway")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["inference"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "10s",
    }
    assert "http" in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # inside collapsed rows


def _targets(dashboard):
    for panel in _panels(dashboard["panels"]):
        yield from panel.get("targets", [])


def test_dashboard_queries_read_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    targets = list(_targets(dashboard))
    assert len(targets) >= 8
    for target in targets:
        check_query(target["expr"])
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "pod"} <= variables
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"Traffic", "Errors", "Latency"} <= titles  # RED


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar():
    docs = chart.scenario("production")
    config_map = chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    assert json.loads(config_map["data"]["gateway-dashboard.json"]) == json.loads(
        DASHBOARD.read_text()
    )


@pytest.mark.parametrize(
    ("copy", "source"),
    [
        (ALERTS, chart.ROOT / "deploy" / "prometheus" / "alerts.yaml"),
        (DASHBOARD, chart.ROOT / "deploy" / "grafana" / "gateway-dashboard.json"),
    ],
    ids=["alerts", "dashboard"],
)
def test_chart_carries_the_deploy_folders_files(copy, source):
    # deploy/ is where alerts and dashboard are written and tested (promtool); a chart must be
    # self-contained (helm package reaches nothing outside it), so it carries copies.
    assert copy.read_bytes() == source.read_bytes(), f"out of date: cp {source} {copy}"


def test_dashboard_only_when_enabled():
    assert not [
        d for d in chart.scenario("defaults") if d["metadata"]["name"].endswith("-dashboard")
    ]


def test_query_checker_catches_unknown_metrics_and_labels():
    with pytest.raises(AssertionError, match="does not export"):
        check_query("rate(gateway_requests_total[5m])")
    with pytest.raises(AssertionError):
        check_query("sum by (tenant) (rate(gateway_http_requests_total[5m]))")

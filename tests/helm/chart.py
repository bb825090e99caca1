"""Run the chart through Helm's own engine: the helm binary `make test` installs (tools/).

Renders are cached per argument set, so the many assertions over one scenario cost one
`helm template`. Helm's cache and config folders are kept inside .tools/, away from $HOME.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "gateway"
HELM = ROOT / ".tools" / "helm" / "helm"
# The chart's kubeVersion floor: manifests must be valid on the oldest cluster we support.
KUBE_VERSION = "1.29.0"
RELEASE = "gw"
# Scenario name -> values file; "defaults" renders values.yaml alone.
SCENARIOS: dict[str, Path | None] = {"defaults": None} | {
    p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))
}
# Rendered as on a cluster that runs the Prometheus Operator.
MONITORING_API = "monitoring.coreos.com/v1"


def _env() -> dict[str, str]:
    home = ROOT / ".tools" / "helm" / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return env


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm; the caller checks the return code (refusals are expected results too)."""
    if not HELM.is_file():
        raise AssertionError(f"{HELM} is missing: `make test` installs it (tools/install-helm.sh)")
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, env=_env(), timeout=60, check=False
    )


def _value_args(values: Iterable[Path | None], sets: Iterable[str], set_strings: Iterable[str]):
    args: list[str] = []
    for f in values:
        if f is not None:
            args += ["-f", str(f)]
    for s in sets:
        args += ["--set-json", s]
    for s in set_strings:
        args += ["--set-string", s]
    return args


def lint(
    values: tuple[Path | None, ...] = (),
    sets: tuple[str, ...] = (),
    set_strings: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    return helm("lint", "--strict", str(CHART), *_value_args(values, sets, set_strings))


def template(
    values: tuple[Path | None, ...] = (),
    sets: tuple[str, ...] = (),
    set_strings: tuple[str, ...] = (),
    api_versions: tuple[str, ...] = (),
    chart_dir: Path = CHART,
) -> subprocess.CompletedProcess[str]:
    args = ["template", RELEASE, str(chart_dir), "--namespace", "inference"]
    args += ["--kube-version", KUBE_VERSION]
    for api in api_versions:
        args += ["--api-versions", api]
    return helm(*args, *_value_args(values, sets, set_strings))


@functools.cache
def render(
    values: tuple[Path | None, ...] = (),
    sets: tuple[str, ...] = (),
    api_versions: tuple[str, ...] = (MONITORING_API,),
) -> tuple[dict[str, Any], ...]:
    """The rendered manifests (empty documents dropped); fails the test if helm refuses."""
    result = template(values, sets, (), api_versions)
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def scenario(name: str, *sets: str) -> tuple[dict[str, Any], ...]:
    return render((SCENARIOS[name],), tuple(sets))


def values_of(name: str) -> dict[str, Any]:
    """values.yaml merged with the scenario's file (maps merge, anything else replaces)."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    path = SCENARIOS[name]
    if path is not None:
        _merge(merged, yaml.safe_load(path.read_text()))
    return merged


def _merge(into: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def kinds(docs: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, got {len(hits)}"
    return hits[0]


def gateway_deployment(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return find(docs, "Deployment", f"{RELEASE}-gateway")


def pod_specs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders: workloads' templates and bare pods (helm test)."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            yield f"Pod/{d['metadata']['name']}", d["spec"]

"""Helpers for the observability tests: the dashboard's queries, PromQL names, tools.

The dashboard is the one in ``deploy/grafana``; its panel queries are expanded the
way Grafana would with "All" selected (``.*``, which also matches a label that is
missing, as ``namespace`` and ``pod`` are outside Kubernetes).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "gateway-dashboard.json"
RULES_DIR = ROOT / "deploy" / "prometheus"

#: The dashboard's template variables and what "All" expands to.
VARIABLES = ("namespace", "pod", "provider", "route")

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


def tool(name: str) -> str:
    """The path of a command the test needs; ``make test`` installs it (Debian ``prometheus``)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: install Debian's 'prometheus' package "
            "(make test does: apt-get install --no-install-recommends prometheus)"
        )
    return path


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.panel} [{self.ref}]"


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    """Every query of every panel (rows included, collapsed or not)."""
    out = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            out.append(PanelQuery(panel["title"], target["refId"], target["expr"]))
    return out


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


def expand(expr: str, *, rate_interval: str) -> str:
    """The query as Grafana sends it with every variable at "All"."""
    out = expr.replace("$__rate_interval", rate_interval)
    out = re.sub(r"\$(?:\{)?(" + "|".join(VARIABLES) + r")\b\}?", ".*", out)
    leftover = re.findall(r"\$\{?[A-Za-z_]\w*", out)
    assert not leftover, f"unknown template variables {leftover} in {expr}"
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", "{}", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "[]", e)  # range durations
    e = _GROUPING.sub(" ", e)  # grouping label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))", e):
        word, call = match.group(0), match.group(1)
        if call == "(" or word.lower() in _KEYWORDS:
            continue  # a function, or an operator word
        names.add(word)
    return names


def exported_names(metrics_text: str) -> set[str]:
    """Every sample name in an exposition (``_bucket``, ``_sum``, ``_total``, ... included)."""
    return {s.name for fam in text_string_to_metric_families(metrics_text) for s in fam.samples}


def label_values_query(definition: str) -> tuple[str, str]:
    """``label_values(metric{...}, label)`` -> (metric, label)."""
    m = re.fullmatch(r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", definition)
    assert m, definition
    return m.group(1), m.group(2)

"""The Grafana dashboard's shape: rows, variables, and queries that honour them.

Whether each panel shows data is checked against a real Prometheus in
``test_prometheus_e2e.py``; this checks what Grafana needs to import and filter it.
"""

from __future__ import annotations

import re

from tests.observability.support import all_panels, load_dashboard, metric_names, panel_queries

ROWS = [
    "Traffic",
    "Errors",
    "Latency",
    "Rate limiting",
    "Providers",
    "Upstream economy",
    "Cache",
    "Jobs",
    "Engine",
    "Saturation",
]

#: Job metrics without a provider label: the engine's shared count of tracked jobs is one
#: number for every replica (a label per provider would cost a Redis scan per scrape).
NO_PROVIDER_LABEL = {"gateway_engine_jobs_tracked"}


def test_rows_in_order_and_every_panel_under_one():
    dashboard = load_dashboard()
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ROWS
    assert dashboard["panels"][0]["type"] == "row"
    for row_start, row_end in zip(dashboard["panels"], dashboard["panels"][1:], strict=False):
        if row_start["type"] == "row":
            assert row_end["type"] != "row", f"row {row_start['title']} is empty"


def test_panels_have_unique_ids_a_layout_and_the_datasource_variable():
    dashboard = load_dashboard()
    panels = all_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"], p["title"]
    # No two panels overlap.
    cells = set()
    for p in panels:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))


def test_variables_and_every_selector_filters_by_namespace_and_pod():
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "pod", "provider", "route"}
    for name in ("namespace", "pod", "provider", "route"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    for q in panel_queries(dashboard):
        selectors = re.findall(r"[a-z_:][a-z0-9_:]*\{([^}]*)\}", q.expr)
        assert len(selectors) >= len(metric_names(q.expr)), q
        for matchers in selectors:
            assert 'namespace=~"$namespace"' in matchers and 'pod=~"$pod"' in matchers, q
        names = metric_names(q.expr)
        if any(
            (n.startswith("gateway_upstream_") or "_job" in n) and n not in NO_PROVIDER_LABEL
            for n in names
        ):
            assert 'provider=~"$provider"' in q.expr, q
        if any(n.startswith("gateway_http_request") and "in_flight" not in n for n in names):
            assert 'route=~"$route"' in q.expr, q
        assert "rate(" not in q.expr or "[$__rate_interval]" in q.expr or "[1h]" in q.expr, q

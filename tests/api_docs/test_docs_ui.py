"""``/docs``: the API browsable and callable in a real browser, from the package's own files.

The in-process tests pin what is served and with which headers; the browser test drives
headless Chromium (playwright-core, tests/node/docs_ui.mjs) against ``gateway demo``:
the page shows every operation of the document, fetches nothing from another origin,
breaks no rule of its Content-Security-Policy, and "Try it out" submits the prefilled
job with the demo's API key and shows the 202.
"""

from __future__ import annotations

import json
import re
import subprocess

from gateway.api.openapi import openapi_document
from gateway.http.handlers.docs import CSP
from tests.api_docs.conftest import DEMO_KEY, NODE_DIR, NODE_ENV, need_chromium, node_tool


async def test_root_points_to_docs_which_needs_no_credential(make_gateway):
    h = await make_gateway(["modzy"])
    root = await h.client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/docs")
    page = await h.client.get("/docs")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Every file the page loads is this origin's, and served with the same policy.
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert loaded and all(u.startswith("/docs/") for u in loaded), loaded
    for url in loaded:
        asset = await h.client.get(url)
        assert asset.status == 200, url
        assert asset.headers["Content-Security-Policy"] == CSP, url
        assert asset.headers["X-Content-Type-Options"] == "nosniff", url


async def test_docs_serves_its_own_files_only(make_gateway):
    h = await make_gateway(["modzy"])
    for name in ("swagger-ui.css.map", "index.html", "..%2F..%2Fapp.py", "SWAGGER_UI_VERSION"):
        resp = await h.client.get(f"/docs/{name}")
        assert resp.status == 404, name
        assert resp.content_type == "application/problem+json", name
    licence = await h.client.get("/docs/LICENSE")
    assert licence.status == 200 and "Apache License" in await licence.text()


def test_browser_shows_every_operation_and_try_it_out_submits_a_job(demo):
    need_chromium()
    node_tool("playwright-core")
    run = subprocess.run(
        ["node", str(NODE_DIR / "docs_ui.mjs"), demo, DEMO_KEY],
        cwd=NODE_DIR,
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["landingUrl"] == f"{demo}/docs" and report["landingStatus"] == 200
    assert report["title"].startswith(openapi_document()["info"]["title"])
    documented = [
        op["operationId"] for item in openapi_document()["paths"].values() for op in item.values()
    ]
    assert sorted(report["operationIds"]) == sorted(documented)
    assert report["foreign"] == [] and report["cspViolations"] == []
    assert report["consoleErrors"] == []
    assert report["prefilledBody"]["model"] == "sentiment"
    assert report["tryItOutStatus"] == "202"
    job = report["tryItOutBody"]
    assert job["model"] == "modzy/ed542963de@1.0.1" and job["done"] is False
    assert f"location: /v1/jobs/{job['id']}" in report["tryItOutText"]

"""Golden answers: the exact bytes and headers of every synchronous route, in every format.

Issue 16 (the hot path) may change how answers are rendered (orjson, bytes kept
pre-rendered, cheaper log lines, pre-bound metrics), never what they are: each case
below writes one exchange, request and answer, as ``tests/golden/<case>.txt`` and
compares it byte for byte with the file there. ``tests/api/golden.py`` says what a file
holds and what is normalised (job ids, the simulators' ids and timestamps, durations,
``Date``), always in the raw bytes, never by parsing and writing back.

After an intended change, regenerate the files and read the diff before committing::

    GOLDEN_UPDATE=1 .venv/bin/pytest tests/api/test_golden.py

A case whose golden file is missing fails (a file is written only under
``GOLDEN_UPDATE=1``), and every synchronous route must be the request of some golden
file (the event stream is the one left out). The job cases run twice, on the in-memory
store and on Redis, against the same files: the bytes must not depend on the backend.

Determinism (``tests/api/golden_gateway.py``): the gateway's wall clock is one the test
moves (every ``created_at``, ``updated_at`` and ``finished_at`` is a fixed 2031 time), the
caller limits run on a frozen clock (``RateLimit`` counts down the same way every run),
each request carries a fixed ``X-Request-ID``, a case's requests run one after another,
and every read of an unfinished job asks the provider (``status_cache_seconds=0``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.modzy.simulator import SimSettings, create_simulator
from gateway.http.app import create_app
from tests.api.golden import GOLDEN_DIR
from tests.api.golden_gateway import example_job, golden_gateway
from tests.conftest import fresh_redis, make_settings

#: Text JSON encoders disagree on: non-ASCII, astral, quotes, backslash, tab, HTML, U+2028.
AWKWARD = "søk ☃ “q” \\ \t </script> \u2028 🚀"
REVIEWS = [
    {"name": "review-1", "text": "Great product, I love it"},
    {"name": "review-2", "text": "Terrible support, awful experience"},
    {"name": "review-3", "text": "This one will fail: " + AWKWARD},
    {"name": "review-4", "text": "It arrived on a Tuesday"},
]
SENTIMENT_JOB = {
    "model": "sentiment",
    "inputs": REVIEWS,
    "metadata": {"team": "search", "note": AWKWARD},
}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Gateway settings for the job store: in memory, or on Redis (a fresh prefix)."""
    if request.param == "memory":
        yield {}
        return
    url: str = request.getfixturevalue("redis_url")
    async with fresh_redis(url) as client:
        yield {"redis": {"url": url, "prefix": client.test_prefix}}


class TestFinishedJob:
    async def test_a_modzy_job_read_every_way(self, make_gateway, backend):
        """Submit, long poll, read; the results in every page, filter and format."""
        g = await golden_gateway(make_gateway, ["modzy"], **backend)
        job = await g.job(SENTIMENT_JOB, name="submit-202")
        await g.wait(job, name="get-job-wait-finished")
        await g.case("get-job-finished", "GET", f"/v1/jobs/{job}")
        await g.case(
            "get-job-finished-prefer-wait",
            "GET",
            f"/v1/jobs/{job}",
            headers={"Prefer": "wait=5"},
        )
        path = f"/v1/jobs/{job}/results"
        await g.case("results-json", "GET", path)
        _, page = await g.case("results-page-1", "GET", f"{path}?page_size=2")
        token = json.loads(page)["next_page_token"]
        await g.case("results-page-2", "GET", f"{path}?page_size=2&page_token={token}")
        await g.case("results-status-failed", "GET", f"{path}?status=failed")
        await g.case("results-status-succeeded-page", "GET", f"{path}?status=succeeded&page_size=1")
        await g.case("results-include-raw", "GET", f"{path}?include=raw")
        await g.case("results-format-csv", "GET", f"{path}?format=csv")
        await g.case("results-format-ndjson", "GET", f"{path}?format=ndjson")
        await g.case("results-accept-csv", "GET", path, headers={"Accept": "text/csv"})
        await g.case(
            "results-accept-ndjson", "GET", path, headers={"Accept": "application/x-ndjson"}
        )
        await g.case("results-csv-route", "GET", f"{path}.csv")
        await g.case("results-csv-route-status-failed", "GET", f"{path}.csv?status=failed")
        await g.case("results-csv-route-include-raw", "GET", f"{path}.csv?include=raw")
        await g.case("results-ndjson-route", "GET", f"{path}.ndjson")
        await g.case("results-ndjson-route-include-raw", "GET", f"{path}.ndjson?include=raw")
        await g.case("result-item", "GET", f"{path}/review-1")
        await g.case("result-item-failed", "GET", f"{path}/review-3")
        await g.case("result-item-include-raw", "GET", f"{path}/review-2?include=raw")
        await g.case("error-404-unknown-item", "GET", f"{path}/review-9")
        await g.case("error-409-cancel-finished", "DELETE", f"/v1/jobs/{job}")
        await g.case("error-404-other-tenants-job", "GET", f"/v1/jobs/{job}", caller="other-svc")
        await g.case("error-422-forged-page-token", "GET", f"{path}?page_token=bm90LW91cnM")
        g.book.assert_all_match()

    async def test_submit_waits_replays_explains_and_reuses(self, make_gateway, backend):
        """Prefer: wait on submit, an idempotent replay, explanations, cached items,
        labels in every script, the job list and its pages."""
        g = await golden_gateway(make_gateway, ["modzy"], **backend)
        first = {"model": "sentiment", "inputs": REVIEWS[:2]}
        job = await g.job(first)
        await g.wait(job)
        # Two of the three inputs are answered from the item cache.
        again = {
            "model": "sentiment",
            "inputs": [*REVIEWS[:2], {"name": "new", "text": "Best day ever"}],
        }
        g.clock.advance(1, 123_456)
        wait = {"Prefer": "wait=10", "Idempotency-Key": "golden-key-1"}
        resp, got = await g.case("submit-wait-200", "POST", "/v1/jobs", body=again, headers=wait)
        assert resp.status == 200, got
        cached = json.loads(got)["id"]
        await g.case("submit-idempotent-replay", "POST", "/v1/jobs", body=again, headers=wait)
        await g.case("results-with-cached-items", "GET", f"/v1/jobs/{cached}/results")
        await g.case("results-with-cached-items-csv", "GET", f"/v1/jobs/{cached}/results.csv")
        await g.case("results-with-cached-items-ndjson", "GET", f"/v1/jobs/{cached}/results.ndjson")
        explained = {
            "model": "sentiment",
            "inputs": [{"name": "t1", "text": "Great but awful " + AWKWARD}],
            "options": {"explain": True},
        }
        job = await g.job(explained)
        await g.wait(job)
        await g.case("results-text-explanation", "GET", f"/v1/jobs/{job}/results")
        image = {
            "model": "modzy/c60c8dbd79@0.0.1",
            "inputs": [
                {
                    "name": "photo",
                    "data": base64.b64encode(b"\x89PNG golden").decode(),
                    "content_type": "image/png",
                }
            ],
            "options": {"explain": True},
        }
        job = await g.job(image)
        await g.wait(job)
        await g.case("results-image-explanation", "GET", f"/v1/jobs/{job}/results")
        # The caller names the labels: non-ASCII text in every format's output.
        labels = {"config.json": {"labels": ["søk ☃", "“q” \\ </script>", "plain 🚀"]}}
        texts = ["søk søk ☃ sun", "the q script", "rocket plain 🚀"]
        topics = {
            "model": "modzy/b7d4c1a9e2@2.0.0",
            "inputs": [{"name": f"d{i}", "text": t, "fields": labels} for i, t in enumerate(texts)],
        }
        job = await g.job(topics)
        await g.wait(job)
        path = f"/v1/jobs/{job}/results"
        await g.case("results-unicode-labels-json", "GET", path)
        await g.case("results-unicode-labels-csv", "GET", f"{path}.csv")
        await g.case("results-unicode-labels-ndjson", "GET", f"{path}.ndjson")
        await g.case("list-jobs", "GET", "/v1/jobs")
        _, page = await g.case("list-jobs-page-1", "GET", "/v1/jobs?page_size=2")
        token = json.loads(page)["next_page_token"]
        target = f"/v1/jobs?page_size=2&page_token={token}"
        await g.case("list-jobs-page-2", "GET", target, cursors=(token,))
        await g.case("list-jobs-filtered", "GET", "/v1/jobs?status=succeeded&provider=modzy")
        g.book.assert_all_match()


class TestRunningJob:
    async def test_a_running_job_then_cancelled(self, make_gateway, backend):
        """A job whose first item runs for an hour: reads ask the provider, a long
        poll times out, a cancel ends it."""
        slow = create_simulator(None, SimSettings(queue_seconds=0, item_seconds=3600))
        g = await golden_gateway(make_gateway, ["modzy"], sim_apps={"modzy": slow}, **backend)
        body = {"model": "sentiment", "inputs": REVIEWS[:2]}
        job = await g.job(body, name="submit-202-running")
        g.clock.advance(2)
        await g.case("get-job-running", "GET", f"/v1/jobs/{job}")
        await g.case(
            "get-job-wait-timeout", "GET", f"/v1/jobs/{job}", headers={"Prefer": "wait=0.1"}
        )
        await g.case("results-running", "GET", f"/v1/jobs/{job}/results")
        await g.case("results-running-csv", "GET", f"/v1/jobs/{job}/results?format=csv")
        # 987654 µs: written as .987 (cut, not rounded to .988).
        g.clock.advance(3, 987_654)
        await g.case("cancel", "DELETE", f"/v1/jobs/{job}")
        await g.case("error-409-cancel-cancelled", "DELETE", f"/v1/jobs/{job}")
        await g.case("results-cancelled", "GET", f"/v1/jobs/{job}/results")
        g.book.assert_all_match()


class TestProviders:
    @pytest.mark.parametrize("ptype", ["woodwide", "vody", "annolab", "llamacloud"])
    async def test_each_providers_results(self, make_gateway, ptype):
        """Each provider's example job (some inputs fail), in JSON, CSV and NDJSON."""
        g = await golden_gateway(make_gateway, [ptype])
        job = await g.job(example_job(ptype))
        await g.wait(job)
        path = f"/v1/jobs/{job}/results"
        await g.case(f"{ptype}-results-json", "GET", path)
        await g.case(f"{ptype}-results-csv", "GET", f"{path}.csv")
        await g.case(f"{ptype}-results-ndjson", "GET", f"{path}.ndjson")
        g.book.assert_all_match()

    async def test_wood_wides_output_types_and_job_outputs(self, make_gateway):
        """Every tabular output type; factor analysis has job-level outputs."""
        g = await golden_gateway(make_gateway, ["woodwide"])
        rows = [
            {
                "name": f"c{i}",
                "record": {"age": 20 + i, "plan": ("basic", "pro")[i % 2], "spend": 9.5 * i},
            }
            for i in range(3)
        ]
        models = ["mdl_price", "mdl_segments", "mdl_fraud", "mdl_embed", "mdl_similar"]
        # Submitted one after another, then waited for: they run at the same time.
        jobs = {m: await g.job({"model": f"woodwide/{m}", "inputs": rows}) for m in models}
        factors = await g.job({"model": "woodwide/mdl_factors", "inputs": rows})
        for job in (*jobs.values(), factors):
            await g.wait(job)
        for model, job in jobs.items():
            await g.case(f"woodwide-{model}-results-json", "GET", f"/v1/jobs/{job}/results")
        path = f"/v1/jobs/{factors}/results"
        await g.case("woodwide-factors-results-json", "GET", path)
        await g.case("woodwide-factors-results-csv", "GET", f"{path}?format=csv")
        await g.case("woodwide-factors-results-ndjson", "GET", f"{path}?format=ndjson")
        g.book.assert_all_match()


class TestErrorsAndOperations:
    async def test_errors(self, make_gateway):
        g = await golden_gateway(make_gateway, ["modzy"])
        job = "job_AAAAAAAAAAAAAAAAAAAAAA"
        one = {"model": "sentiment", "inputs": [{"name": "a", "text": "x"}]}
        await g.case("error-404-unknown-job", "GET", f"/v1/jobs/{job}")
        await g.case("error-404-unknown-job-results", "GET", f"/v1/jobs/{job}/results")
        await g.case("error-404-unknown-job-cancel", "DELETE", f"/v1/jobs/{job}")
        await g.case("error-422-unknown-field", "POST", "/v1/jobs", body={**one, "colour": "red"})
        await g.case(
            "error-422-unsupported-input",
            "POST",
            "/v1/jobs",
            body={"model": "sentiment", "inputs": [{"name": "a", "record": {"x": 1}}]},
        )
        await g.case(
            "error-404-unknown-model", "POST", "/v1/jobs", body={**one, "model": "modzy/nope@1"}
        )
        await g.case("error-400-invalid-json", "POST", "/v1/jobs", body=b'{"model": ')
        await g.case("error-422-bad-status-filter", "GET", "/v1/jobs?status=finished")
        await g.case("error-422-bad-page-size", "GET", "/v1/jobs?page_size=two")
        await g.case("error-401-no-credential", "GET", "/v1/jobs", caller=None, request_id=None)
        await g.case("error-401-wrong-credential", "GET", "/v1/jobs", caller="a-wrong-key")
        await g.case("error-403-missing-scope", "POST", "/v1/jobs", caller="acme-reader", body=one)
        # The reader's limit is one read a minute: this spends it, the next is refused.
        await g.case("models-as-reader", "GET", "/v1/models", caller="acme-reader")
        await g.case("error-429-rate-limited", "GET", "/v1/models", caller="acme-reader")
        await g.case("error-405-method", "PUT", "/v1/jobs", body={})
        await g.case("error-405-method-on-job", "PATCH", f"/v1/jobs/{job}")
        await g.case("error-404-no-route", "GET", "/v2/jobs")
        big = {"model": "sentiment", "inputs": [{"name": "a", "text": "x" * 20_000}]}
        await g.case(
            "error-413-body-too-large",
            "POST",
            "/v1/jobs",
            body=big,
            shown_body='{"model": "sentiment", "inputs": [{"name": "a", "text": "x" * 20000}]}',
        )
        g.book.assert_all_match()

    async def test_operations_and_catalog(self, make_gateway):
        g = await golden_gateway(make_gateway, ["modzy", "woodwide"])
        await g.case("healthz", "GET", "/healthz", caller=None)
        await g.case(
            "healthz-generated-request-id", "GET", "/healthz", caller=None, request_id=None
        )
        await g.case("readyz", "GET", "/readyz", caller=None)
        await g.case("models", "GET", "/v1/models")
        await g.case("providers", "GET", "/v1/providers")
        await g.case("openapi", "GET", "/openapi.json", caller=None, body_as="sha256")
        await g.case("root-redirect", "GET", "/", caller=None)
        await g.case("docs-page", "GET", "/docs", caller=None)
        await g.case("docs-asset", "GET", "/docs/init.js", caller=None)
        await g.case("error-404-docs-asset", "GET", "/docs/index.html", caller=None)
        # Sample values vary (durations, the event-loop lag): only the headers are pinned.
        _, got = await g.case("metrics", "GET", "/metrics", caller=None, body_as="unpinned")
        assert b"\ngateway_http_requests_total{" in got
        g.book.assert_all_match()

    async def test_readiness_on_redis(self, make_gateway, redis_url):
        """With Redis, /readyz names it and says how durable it is (this Redis's own
        persistence settings: pinned only to the keys it reports)."""
        async with fresh_redis(redis_url) as client:
            over = {"redis": {"url": redis_url, "prefix": client.test_prefix}}
            g = await golden_gateway(make_gateway, ["modzy"], **over)
            resp, got = await g.case(None, "GET", "/readyz", caller=None)
            body = json.loads(got)
            assert resp.status == 200, body
            assert body["status"] == "ok"
            assert body["components"] == {"config": "ok", "redis": "ok"}
            assert list(body) == ["status", "components", "details"]


async def test_every_synchronous_route_has_a_golden_case():
    """Every route of the router but the event stream is the request of a golden file."""
    app = create_app(make_settings([]))
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.method != "HEAD"
        and not r.resource.canonical.endswith("/events")
    }
    seen = set()
    for path in GOLDEN_DIR.glob("*.txt"):
        method, target = path.read_bytes().split(b"\n")[1].decode().split(" ")[:2]
        for m, template in routes:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if m == method and re.fullmatch(pattern, target.split("?")[0]):
                seen.add((m, template))
    assert sorted(routes - seen) == []

"""A finished job's answers are rendered once and served as the same bytes (issue 16).

``gateway.http.rendered`` keeps a settled job's view, results pages and exports as the
bytes they were rendered to. These tests pin what that must not change: the kept bytes
are those a fresh render gives, each variant (page, filter, format, ``include=raw``,
item) is its own entry, another tenant still gets 404 for a kept answer, an unfinished
job or one whose webhook delivery is pending is rendered afresh, and the bound holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.base import JobStatus
from gateway.http.keys import RENDERED
from gateway.http.rendered import RenderedAnswers
from gateway.state.store import JobRecord, Notification
from tests.api.test_jobs_api import problem, submit, text_inputs, wait_done
from tests.conftest import AUTH, OTHER_AUTH, Harness

ROUTES = [
    "/v1/jobs/{id}",
    "/v1/jobs/{id}/results",
    "/v1/jobs/{id}/results?page_size=1",
    "/v1/jobs/{id}/results?page_size=2&status=succeeded",
    "/v1/jobs/{id}/results?include=raw",
    "/v1/jobs/{id}/results?format=csv",
    "/v1/jobs/{id}/results?format=ndjson",
    "/v1/jobs/{id}/results.ndjson?include=raw",
    "/v1/jobs/{id}/results/review-1",
]
#: Headers that differ per request by design.
_PER_REQUEST = {"Date", "X-Request-ID", "Server-Timing", "RateLimit", "RateLimit-Policy"}

Answer = tuple[int, dict[str, str], bytes]


async def finished_job(h: Harness) -> str:
    resp = await submit(h, {"model": "sentiment", "inputs": text_inputs()})
    job_id: str = (await resp.json())["id"]
    await wait_done(h, job_id)
    return job_id


async def read(h: Harness, path: str, headers: dict[str, str] = AUTH) -> Answer:
    resp = await h.client.get(path, headers=headers)
    kept = {k: v for k, v in resp.headers.items() if k not in _PER_REQUEST}
    return resp.status, kept, await resp.read()


async def test_each_answer_of_a_finished_job_is_kept_once_and_is_what_a_fresh_render_gives(
    make_gateway: Any,
):
    h = await make_gateway(["modzy"])
    job_id = await finished_job(h)
    # The first read of results asks the provider (Cache-Status: fwd=miss); then hits.
    warm = {r: await read(h, r.format(id=job_id)) for r in ROUTES}
    assert all(status == 200 for status, _, _ in warm.values()), warm
    rendered = h.app[RENDERED]
    assert len(rendered) == len(ROUTES)  # one entry per route and query
    first = {r: await read(h, r.format(id=job_id)) for r in ROUTES}
    assert {r: a[2] for r, a in first.items()} == {r: a[2] for r, a in warm.items()}
    again = {r: await read(h, r.format(id=job_id)) for r in ROUTES}
    assert again == first
    assert len(rendered) == len(ROUTES)  # nothing rendered again
    # What was kept is what a render now gives: forget it all, and read once more.
    rendered.clear()
    fresh = {r: await read(h, r.format(id=job_id)) for r in ROUTES}
    assert fresh == first


async def test_a_gateway_that_keeps_nothing_rendered_answers_alike(make_gateway: Any):
    h = await make_gateway(["modzy"], server={"rendered_cache_bytes": 0})
    job_id = await finished_job(h)
    warm = [await read(h, r.format(id=job_id)) for r in ROUTES]
    answers = [await read(h, r.format(id=job_id)) for r in ROUTES]
    assert [a[0] for a in answers] == [200] * len(ROUTES)
    assert [a[2] for a in answers] == [a[2] for a in warm]
    assert answers == [await read(h, r.format(id=job_id)) for r in ROUTES]
    assert len(h.app[RENDERED]) == 0


async def test_another_tenant_is_refused_an_answer_that_was_kept(make_gateway: Any):
    h = await make_gateway(["modzy"])
    job_id = await finished_job(h)
    for route in ROUTES:
        assert (await read(h, route.format(id=job_id)))[0] == 200
    for route in ROUTES:
        resp = await h.client.get(route.format(id=job_id), headers=OTHER_AUTH)
        await problem(resp, 404, "not_found")


async def test_an_unfinished_job_is_never_kept(make_gateway: Any):
    h = await make_gateway(["modzy"])
    resp = await submit(h, {"model": "sentiment", "inputs": text_inputs()})
    job_id = (await resp.json())["id"]
    status, _, _ = await read(h, f"/v1/jobs/{job_id}")
    assert status == 200
    assert len(h.app[RENDERED]) == 0


def _record(status: JobStatus, notification: Notification | None = None) -> JobRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return JobRecord(
        id="job_x",
        tenant="acme",
        key_id="k",
        model="sentiment",
        provider="modzy",
        input_names=("a",),
        created_at=now,
        updated_at=now,
        status=status,
        notification=notification,
    )


def test_only_a_settled_job_is_kept():
    answers = RenderedAnswers(1024)
    renders: list[JobStatus | str] = []

    def render(what: JobStatus | str) -> bytes:
        renders.append(what)
        return b'{"x": 1}'

    running = _record(JobStatus.RUNNING)
    pending = _record(JobStatus.SUCCEEDED, Notification(status="pending"))
    delivered = _record(JobStatus.SUCCEEDED, Notification(status="delivered", attempts=1))
    for record in (running, running, pending, pending):
        answers.answer(record, "job", lambda: render(record.status))  # noqa: B023
    assert len(renders) == 4 and len(answers) == 0
    for _ in range(3):
        answers.answer(delivered, "job", lambda: render("delivered"))
    assert renders[4:] == ["delivered"] and len(answers) == 1


def test_the_bound_holds_least_recently_used_out_first_and_an_oversized_answer_is_not_kept():
    answers = RenderedAnswers(800)
    record = _record(JobStatus.SUCCEEDED)
    for i in range(20):
        answers.answer(record, i, lambda: bytes(90))
    assert answers.held_bytes <= 800 and len(answers) == 8
    rendered: list[int] = []

    def again(i: int) -> bytes:
        rendered.append(i)
        return bytes(90)

    answers.answer(record, 19, lambda: again(19))  # held
    answers.answer(record, 0, lambda: again(0))  # pushed out long ago
    assert rendered == [0]
    answers.answer(record, "big", lambda: bytes(101))  # over an eighth of the bound
    assert len(answers) == 8 and answers.held_bytes <= 800

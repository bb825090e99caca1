"""The gateway a golden test talks to, and the session that pins its answers.

One gateway per test (``golden_gateway``), over the simulators on loopback like every API
test, made deterministic: the wall clock is a ``SetClock`` the test moves, the caller
limits run on a frozen clock (``RateLimit`` counts down the same way every run), each
request carries a fixed ``X-Request-ID``, and every read of an unfinished job asks the
provider. ``Golden.case`` sends one request and pins the exchange (``tests/api/golden.py``).
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientResponse

from adapters.base import JobInput
from adapters.registry import provider_type
from gateway.config.settings import ModelSettings
from gateway.jobs.settings import ItemCacheSettings
from gateway.limits.buckets import MemoryBuckets
from gateway.limits.gcra import MICROS
from gateway.limits.settings import RateLimitSettings
from tests.api.golden import GoldenBook, Normaliser, Request, render
from tests.conftest import AUTH, OTHER_AUTH, READ_AUTH, Harness

#: Where the gateway's wall clock starts. The test moves it forward only (a job list
#: is ordered by creation time), by whole seconds and by steps with a fraction, which
#: pins how a time is written with none, with milliseconds and with microseconds.
T0 = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
REQUEST_ID = "golden-0001"
CALLERS = {
    "acme-svc": AUTH,
    "other-svc": OTHER_AUTH,
    "acme-reader": READ_AUTH,
    "a-wrong-key": {"Authorization": "Bearer not-a-key-of-this-gateway"},
}
RATELIMIT = RateLimitSettings.model_validate(
    {
        "per_key": {
            "read": {"requests": 600, "per_seconds": 60, "burst": 100},
            "submit": {"requests": 60, "per_seconds": 60, "burst": 20},
        },
        "per_tenant": {"read": {"requests": 6000, "per_seconds": 60, "burst": 1000}},
        # One read a minute: the second is refused (the 429 case).
        "keys": {"acme-reader": {"read": {"requests": 1, "per_seconds": 60}}},
    }
)
#: Sentiment answers from the item cache (the ``cached: true`` case); the image model
#: explains itself with a mask; the topic model answers with labels the caller names.
MODZY_MODELS = [
    ModelSettings(
        id="ed542963de",
        version="1.0.1",
        output_type="classification",
        description="Sentiment of a short text — “positive”, “negative” or neutral.",
        cache=ItemCacheSettings(items=True),
    ),
    ModelSettings(id="c60c8dbd79", version="0.0.1", output_type="classification"),
    ModelSettings(id="b7d4c1a9e2", version="2.0.0", output_type="classification"),
]


class SetClock:
    """The gateway's clock: wall time the test moves; monotonic time real (waits, TTLs)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def advance(self, seconds: int = 0, micros: int = 0) -> None:
        self.at += timedelta(seconds=seconds, microseconds=micros)

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class Golden:
    """One test's gateway and its golden cases, run in order."""

    h: Harness
    clock: SetClock
    book: GoldenBook = field(default_factory=GoldenBook)

    async def case(
        self,
        name: str | None,
        method: str,
        target: str,
        *,
        caller: str | None = "acme-svc",
        headers: dict[str, str] | None = None,
        body: Any = None,
        shown_body: str | None = None,
        request_id: str | None = REQUEST_ID,
        body_as: str = "bytes",
        cursors: tuple[str, ...] = (),
    ) -> tuple[ClientResponse, bytes]:
        """Send one request; with a ``name``, pin the exchange as that golden case.

        ``body``: bytes as they are, anything else as JSON. ``cursors``: job-list
        cursors sent in ``target`` (they hold a job id).
        """
        sent = dict(headers or {})
        if request_id is not None:
            sent["X-Request-ID"] = request_id
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        auth = CALLERS[caller] if caller is not None else {}
        resp = await self.h.client.request(
            method, target, headers={**auth, **sent}, data=data, allow_redirects=False
        )
        got = await resp.read()
        n = Normaliser()
        rid = resp.headers.get("X-Request-ID", "")
        if request_id is not None:
            assert rid == request_id, (name, rid)
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", rid), (name, rid)
            n.literal(rid.encode(), b"<generated request id>")
        assert "Server-Timing" in resp.headers and "Date" in resp.headers, name
        if method == "GET" and target.split("?")[0] == "/v1/jobs" and resp.status == 200:
            answered = json.loads(got)["next_page_token"]
            cursors = (*cursors, *([answered] if answered else []))
        for token in cursors:
            n.cursor(token.encode())
        if name is not None:
            shown = [(k, v) for k, v in sent.items() if k != "X-Request-ID"]
            if data is not None:
                shown.append(("# request body", shown_body or data.decode()))
            request = Request(method, target, tuple(shown), caller)
            self.book.check(name, render(request, resp, got, n, body_as=body_as))
        return resp, got

    async def job(self, body: dict[str, Any], *, name: str | None = None) -> str:
        """Submit, a second after the clock's last step (202): the job's id."""
        self.clock.advance(1)
        resp, got = await self.case(name, "POST", "/v1/jobs", body=body)
        assert resp.status == 202, got
        return str(json.loads(got)["id"])

    async def wait(self, job_id: str, *, name: str | None = None) -> None:
        """Long poll until the job ends, 0.789 s after the clock's last step (200)."""
        self.clock.advance(0, 789_000)
        resp, got = await self.case(
            name, "GET", f"/v1/jobs/{job_id}", headers={"Prefer": "wait=10"}
        )
        assert resp.status == 200 and json.loads(got)["done"], got


def frozen_buckets() -> MemoryBuckets:
    """The caller limits on a clock that never moves: each request spends one token."""
    frozen = 1_900_000_000 * MICROS
    return MemoryBuckets(now_us=lambda: frozen)


async def golden_gateway(make_gateway: Any, types: list[str], **over: Any) -> Golden:
    clock = SetClock(T0)
    h: Harness = await make_gateway(
        types,
        app_over={"clock": clock, "buckets": frozen_buckets()},
        provider_over={"modzy": {"models": MODZY_MODELS}},
        ratelimit=RATELIMIT,
        max_body_bytes=16 * 1024,
        # Every read of an unfinished job asks the provider: a long poll sees the end
        # as soon as it comes, and a read's Cache-Status does not depend on timing.
        status_cache_seconds=0,
        **over,
    )
    return Golden(h, clock)


def api_input(i: JobInput) -> dict[str, Any]:
    """A provider example's input as the API takes it."""
    out: dict[str, Any] = {"name": i.name}
    if i.data is not None:
        out["data"] = base64.b64encode(i.data).decode()
        out["content_type"] = i.content_type
    else:
        value = {"text": i.text, "url": i.url, "ref": i.ref, "record": i.record}[i.kind.value]
        out[i.kind.value] = dict(value) if isinstance(value, dict) else value
    if i.fields:
        out["fields"] = dict(i.fields)
    return out


def example_job(ptype: str) -> dict[str, Any]:
    """Provider ``ptype``'s example model, some of whose inputs fail in the simulator."""
    ex = provider_type(ptype).examples
    model = f"{ptype}/{ex.model_id}" + (f"@{ex.version}" if ex.version else "")
    inputs = [api_input(i) for i in (*ex.good_inputs, *ex.partly_failing_inputs)]
    # Names are unique in a job; the two example lists may share one.
    unique = list({i["name"]: i for i in inputs}.values())
    return {"model": model, "inputs": unique, "options": {"provider": dict(ex.options)}}

"""What every provider simulator shares: switchable faults, a request log, a rate limit.

A simulator is a real aiohttp app that speaks one provider's wire API. This module
gives each of them the same control surface, so a test (or a person trying the demo)
can make any provider slow, failing, rate limiting, hanging or garbled:

* in process: ``app[SIM_CONTROL].set_faults([...])``, ``.requests``, ``.clock``;
* over HTTP: ``GET/PUT/DELETE /_sim/faults``, ``GET /_sim/requests`` and
  ``DELETE /_sim/requests``, ``PUT /_sim/rate_limit`` (the control routes need no
  provider credential and are never subject to faults or the rate limit).

The request log keeps each request's arrival time (the simulator's monotonic clock)
and the status it was answered with, so a test can measure the rate the provider saw
in any window and count the 429s it sent.

A fault applies to requests whose ``"METHOD /path"`` contains ``match`` (all when
unset), for the next ``times`` requests (until cleared when unset). Kinds:

``latency``    wait ``seconds`` then answer normally
``status``     answer ``status`` with the provider's error body (+ ``Retry-After``)
``hang``       never answer (the client's timeout must end it)
``malformed``  answer 200 with a body that is not JSON
``reset``      close the connection without an answer
``lost``       do the work (a submit creates the job), then close the connection
               without an answer: the caller cannot know the job exists
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["latency", "status", "hang", "malformed", "reset", "lost"]


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    match: str | None = None
    times: int | None = Field(default=None, ge=1)
    seconds: float = Field(default=0.0, ge=0, le=600)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: str | None = None


class _FaultList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faults: list[Fault]


class _RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: None switches the limit off.
    rps: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)


@dataclass(slots=True)
class SeenRequest:
    method: str
    path: str
    at: float
    headers: dict[str, str]
    #: The status answered (None: no answer, e.g. a reset or a hang).
    status: int | None = None


ErrorBody = Callable[[int, str], Any]


def default_error_body(status: int, message: str) -> Any:
    return {"message": message}


@dataclass
class SimulatorControl:
    """The switchboard of one simulator instance."""

    error_body: ErrorBody = default_error_body
    clock: Callable[[], float] = time.monotonic
    #: Requests per second the simulated provider allows (None: unlimited); over it
    #: the simulator answers 429 with Retry-After like a real rate-limited API.
    rate_limit_rps: float | None = None
    rate_limit_burst: int = 1
    faults: list[Fault] = field(default_factory=list)
    requests: list[SeenRequest] = field(default_factory=list)
    max_log: int = 100_000
    _remaining: dict[int, int] = field(default_factory=dict)
    _tokens: float = 0.0
    _tokens_at: float = 0.0

    def set_faults(self, faults: list[Fault]) -> None:
        self.faults = list(faults)
        self._remaining = {i: f.times for i, f in enumerate(self.faults) if f.times is not None}

    def clear_faults(self) -> None:
        self.set_faults([])

    def count(self, method: str | None = None, contains: str = "") -> int:
        """How many provider requests matched (for tests counting upstream calls)."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and contains in r.path
        )

    def set_rate_limit(self, rps: float | None, burst: int = 1) -> None:
        self.rate_limit_rps = rps
        self.rate_limit_burst = burst
        self._tokens_at = 0.0  # start with a full bucket

    def _record(self, request: web.Request) -> SeenRequest:
        if len(self.requests) >= self.max_log:
            del self.requests[: self.max_log // 2]
        seen = SeenRequest(request.method, request.path, time.monotonic(), dict(request.headers))
        self.requests.append(seen)
        return seen

    def _take_fault(self, key: str) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.match is not None and fault.match not in key:
                continue
            left = self._remaining.get(i)
            if left is not None:
                if left <= 0:
                    continue
                self._remaining[i] = left - 1
            return fault
        return None

    def _rate_limited(self) -> float | None:
        """Seconds until the next request is allowed, or None if allowed now."""
        if self.rate_limit_rps is None:
            return None
        now = time.monotonic()
        cap = float(self.rate_limit_burst)
        if self._tokens_at == 0.0:
            self._tokens = cap
        else:
            self._tokens = min(cap, self._tokens + (now - self._tokens_at) * self.rate_limit_rps)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.rate_limit_rps


SIM_CONTROL = web.AppKey("sim_control", SimulatorControl)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sim/") or "/_sim/" in request.path:
        return await handler(request)
    control = request.app[SIM_CONTROL]
    seen = control._record(request)
    response = await _answer(request, control, handler)
    aborted = request.transport is None or request.transport.is_closing()
    seen.status = None if aborted else response.status
    return response


async def _answer(
    request: web.Request, control: SimulatorControl, handler: Handler
) -> web.StreamResponse:
    fault = control._take_fault(f"{request.method} {request.path}")
    if fault is not None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
        elif fault.kind == "hang":
            await asyncio.sleep(3600)
        elif fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the aborted connection
        elif fault.kind == "lost":
            response = await handler(request)
            if request.transport is not None:
                request.transport.abort()
            return response  # never reaches the aborted connection
        elif fault.kind == "malformed":
            return web.Response(status=200, text='{"oops": [1, 2', content_type="application/json")
        elif fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            return web.json_response(
                control.error_body(fault.status, "Simulated fault"),
                status=fault.status,
                headers=headers,
            )
    wait = control._rate_limited()
    if wait is not None:
        return web.json_response(
            control.error_body(429, "Rate limit exceeded"),
            status=429,
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    return await handler(request)


async def _get_faults(request: web.Request) -> web.Response:
    control = request.app[SIM_CONTROL]
    return web.json_response({"faults": [f.model_dump(exclude_none=True) for f in control.faults]})


async def _put_faults(request: web.Request) -> web.Response:
    try:
        parsed = _FaultList.model_validate_json(await request.read())
    except ValueError as exc:
        return web.json_response({"message": str(exc)}, status=400)
    request.app[SIM_CONTROL].set_faults(parsed.faults)
    return await _get_faults(request)


async def _delete_faults(request: web.Request) -> web.Response:
    request.app[SIM_CONTROL].clear_faults()
    return web.json_response({"faults": []})


async def _get_requests(request: web.Request) -> web.Response:
    """The last ``limit`` requests received (default 1000; at most what is kept)."""
    control = request.app[SIM_CONTROL]
    try:
        limit = max(1, int(request.query.get("limit", "1000")))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    return web.json_response(
        {
            "count": len(control.requests),
            "requests": [
                {"method": r.method, "path": r.path, "at": r.at, "status": r.status}
                for r in control.requests[-limit:]
            ],
        }
    )


async def _delete_requests(request: web.Request) -> web.Response:
    request.app[SIM_CONTROL].requests.clear()
    return web.json_response({"count": 0})


async def _put_rate_limit(request: web.Request) -> web.Response:
    try:
        parsed = _RateLimit.model_validate_json(await request.read())
    except ValueError as exc:
        return web.json_response({"message": str(exc)}, status=400)
    request.app[SIM_CONTROL].set_rate_limit(parsed.rps, parsed.burst)
    return web.json_response(parsed.model_dump())


def make_simulator_app(control: SimulatorControl) -> web.Application:
    """A new aiohttp app with the fault middleware and the ``/_sim/`` control routes.

    Each provider's ``create_simulator`` calls this and adds its own routes.
    """
    app = web.Application(middlewares=[_fault_middleware], client_max_size=64 * 2**20)
    app[SIM_CONTROL] = control
    app.router.add_get("/_sim/faults", _get_faults)
    app.router.add_put("/_sim/faults", _put_faults)
    app.router.add_delete("/_sim/faults", _delete_faults)
    app.router.add_get("/_sim/requests", _get_requests)
    app.router.add_delete("/_sim/requests", _delete_requests)
    app.router.add_put("/_sim/rate_limit", _put_rate_limit)
    return app

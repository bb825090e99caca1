"""``/v1/jobs/{job_id}/events``: a job's changes as Server-Sent Events.

The wire format, heartbeats (comment lines every ``events.heartbeat_seconds``) and the
cut-off of a client that stops reading (``events.send_timeout_seconds``) are aiohttp-sse's;
what is sent and when is ``gateway.jobs.live``'s. Everything that can be refused is
refused before the stream starts, as problem+json; after that, the stream only ends.
"""

from __future__ import annotations

import contextlib
import json
import re

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from gateway.api.views import dump
from gateway.errors import FieldError, ValidationFailed
from gateway.http.keys import LIVE, PRINCIPAL
from gateway.http.middleware.context import apply_headers
from gateway.jobs.live import JobStream
from gateway.observability.context import FACTS
from gateway.tasks import spawn

# The ids this gateway sends are non-negative integers (gateway.jobs.live.event_id).
_EVENT_ID = re.compile(r"^[0-9]{1,30}$")


def last_event_id(request: web.Request) -> int | None:
    """``Last-Event-ID`` (sent by a reconnecting EventSource): the last id the client has."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return None
    if not _EVENT_ID.match(raw):
        raise ValidationFailed(
            "Last-Event-ID must be an event id this gateway sent (digits only).",
            errors=[FieldError("/headers/Last-Event-ID", "an event id this gateway sent")],
        )
    return int(raw)


async def job_events(request: web.Request) -> web.StreamResponse:
    after = last_event_id(request)
    live = request.app[LIVE]
    s = live.settings
    async with live.open(request[PRINCIPAL], request.match_info["job_id"]) as stream:
        response = EventSourceResponse(
            ping_interval=s.heartbeat_seconds, send_timeout=s.send_timeout_seconds
        )
        facts = FACTS.get()
        if facts is not None:
            apply_headers(response, facts)
        await response.prepare(request)
        gone = spawn(_stop_when_gone(response, stream), name="event-stream-gone")
        try:
            async with contextlib.aclosing(stream.changes(after)) as changes:
                retry: int | None = s.retry_ms
                async for seq, job in changes:
                    data = json.dumps(dump(job))
                    await response.send(data, id=str(seq), event="job", retry=retry)
                    retry = None
        except (ConnectionResetError, TimeoutError):
            pass  # the client went away, or stopped reading and was cut off
        finally:
            gone.cancel()
            response.stop_streaming()
    return response


async def _stop_when_gone(response: EventSourceResponse, stream: JobStream) -> None:
    # The heartbeat task ends when a write fails: the client is gone, so is the stream.
    await response.wait()
    stream.stop()

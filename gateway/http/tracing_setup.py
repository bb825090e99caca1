"""Tracing's part of the composition root: what ``create_app`` adds when it is on.

Kept out of ``app.py`` so that, with tracing off, the composition root reads as before:
one ``build_tracing`` call that returns None, and no tracer handed to anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.observability.tracing import Tracing


def provider_trace_configs(tracing: Tracing | None) -> list[aiohttp.TraceConfig]:
    """The provider sessions' trace config: a span per attempt, and the W3C
    ``traceparent`` sent with it, so the provider's trace continues ours."""
    if tracing is None:
        return []
    # Imported here: a fifth of a second of a replica's start, for tracing only.
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [
        create_trace_config(
            url_filter=_bare_url,
            tracer_provider=tracing.provider,
            # No header at all: one of them is the provider credential.
            captured_request_headers=[],
            captured_response_headers=[],
        )
    ]


def _bare_url(url: URL) -> str:
    # A signed download link carries its signature in the query: the span keeps none.
    return str(url.with_user(None).with_query(None).with_fragment(None))


def tracing_ctx(tracing: Tracing) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: export the spans still buffered when the app stops."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        # The exporter's last flush is blocking HTTP: off the event loop.
        await asyncio.get_running_loop().run_in_executor(None, tracing.shutdown)

    return ctx

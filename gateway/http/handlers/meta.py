"""Providers, models, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.models import (
    AliasInfo,
    AliasTargetInfo,
    Capabilities,
    ModelInfo,
    ModelList,
    ProviderInfo,
    ProviderList,
)
from gateway.api.openapi import openapi_document
from gateway.api.views import dump
from gateway.http.handlers.jobs import json_response
from gateway.http.keys import (
    ADAPTERS,
    CATALOG,
    LIFECYCLE,
    METRICS,
    PRINCIPAL,
    REDIS_WATCH,
    SETTINGS,
    STORE,
    UPSTREAMS,
)


async def list_providers(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("jobs:read")
    settings = request.app[SETTINGS]
    adapters = request.app[ADAPTERS]
    upstreams = {u.provider: u for u in request.app[UPSTREAMS]}
    providers = []
    for p in settings.providers:
        adapter = adapters.get(p.name)
        if adapter is None:
            continue
        upstream = upstreams.get(p.name)
        # The breaker as this replica follows it (shared through Redis when configured).
        state = await upstream.state() if upstream is not None else "available"
        providers.append(
            ProviderInfo(
                name=p.name,
                type=p.type,
                state=state,
                capabilities=Capabilities.model_validate(adapter.capabilities.as_dict()),
                models=[
                    f"{p.name}/{m.id}@{m.version}" if m.version else f"{p.name}/{m.id}"
                    for m in p.models
                ],
            )
        )
    return json_response(dump(ProviderList(providers=providers)))


async def list_models(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("jobs:read")
    settings = request.app[SETTINGS]
    catalog = request.app[CATALOG]
    models = [
        ModelInfo(
            id=f"{p.name}/{m.id}@{m.version}" if m.version else f"{p.name}/{m.id}",
            provider=p.name,
            aliases=catalog.aliases_of(p.name, m),
            output_type=m.output_type,
            description=m.description,
        )
        for p in settings.providers
        for m in p.models
    ]
    aliases = [
        AliasInfo(
            name=name,
            targets=[AliasTargetInfo(model=t.model, weight=t.weight) for t in chain],
        )
        for name, chain in sorted(catalog.chains.items())
    ]
    return json_response(dump(ModelList(models=models, aliases=aliases)))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    components: dict[str, str] = {"config": "ok"}
    ready = True
    if request.app[LIFECYCLE].draining:
        return json_response({"status": "draining", "components": components}, status=503)
    # The store is Redis where one is configured: name it so operators know what to fix.
    name = "redis" if request.app[SETTINGS].redis.url else "store"
    try:
        await request.app[STORE].ping()
        components[name] = "ok"
    except Exception:  # any failure of the store means not ready
        components[name] = "unavailable"
        ready = False
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "components": components}
    watch = request.app.get(REDIS_WATCH)
    if watch is not None:
        # Not a readiness condition: a Redis without persistence serves, but a restart
        # of it loses every job (docs/operations.md "What Redis the gateway needs, and why").
        body["details"] = {"redis": watch.persistence.as_dict()}
    return json_response(body, status=200 if ready else 503)


_OPENMETRICS = "application/openmetrics-text"


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    if metrics.exemplars and _OPENMETRICS in request.headers.get("Accept", ""):
        # Prometheus asks for OpenMetrics first; only that format carries exemplars.
        return web.Response(
            body=metrics.render(openmetrics=True),
            headers={"Content-Type": f"{_OPENMETRICS}; version=1.0.0; charset=utf-8"},
        )
    body = metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())

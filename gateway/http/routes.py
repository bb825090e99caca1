"""The URL map: every route of the v1 API and of operations."""

from __future__ import annotations

from aiohttp import web

from gateway.http.handlers import docs, events, jobs, meta, results
from gateway.http.keys import SETTINGS


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/jobs", jobs.submit_job)
    r.add_get("/v1/jobs", jobs.list_jobs, allow_head=False)
    r.add_get("/v1/jobs/{job_id}", jobs.get_job, allow_head=False)
    r.add_delete("/v1/jobs/{job_id}", jobs.cancel_job)
    r.add_get("/v1/jobs/{job_id}/events", events.job_events, allow_head=False)
    r.add_get("/v1/jobs/{job_id}/results", results.get_results, allow_head=False)
    r.add_get("/v1/jobs/{job_id}/results.csv", results.export_csv, allow_head=False)
    r.add_get("/v1/jobs/{job_id}/results.ndjson", results.export_ndjson, allow_head=False)
    r.add_get("/v1/jobs/{job_id}/results/{input}", results.get_result_item, allow_head=False)
    r.add_get("/v1/providers", meta.list_providers, allow_head=False)
    r.add_get("/v1/models", meta.list_models, allow_head=False)
    r.add_get("/healthz", meta.healthz)
    r.add_get("/readyz", meta.readyz)
    if app[SETTINGS].server.metrics_on_main_port:
        # Off when /metrics is served on its own port only (gateway.http.metrics_server).
        r.add_get("/metrics", meta.metrics)
    r.add_get("/openapi.json", meta.openapi)
    # The API browsable; no credential, like /openapi.json (gateway/http/handlers/docs.py).
    r.add_get("/", docs.root, allow_head=False)
    r.add_get("/docs", docs.page)
    r.add_get("/docs/{name}", docs.asset)

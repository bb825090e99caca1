"""The Modzy adapter: glues ``wire`` to the provider's Upstream.

Two answers need Modzy-specific handling, both documented in its SDKs:

* ``GET /results/{id}`` answers 404 for a job accepted a moment ago (no item has
  started). The Python SDK then asks ``GET /jobs/{id}``: if the job exists, the 404
  means "no results yet" and becomes an empty result set; only a job that is unknown
  there too is ``UpstreamJobNotFound``.
* ``DELETE /jobs/{id}`` of a job that ended meanwhile is refused; the job's own
  terminal status is then the answer to the cancel, not an error.
"""

from __future__ import annotations

from adapters.base import (
    Capabilities,
    InputKind,
    JobHandle,
    JobRequest,
    ProviderConfig,
    ResultSet,
    StatusReport,
    Submission,
    parse_options,
    require_input_kinds,
)
from adapters.errors import ProviderRejected
from adapters.modzy import wire
from adapters.upstream import Upstream, UpstreamResponse, message_from_body

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.TEXT, InputKind.DATA}),
    output_types=frozenset({"classification", "json"}),
    cancel=True,
    explain=True,
)

_NOT_FOUND = "The provider does not know this job."
#: How Modzy refuses to cancel a job (it answers 400 for one that already ended).
_CANCEL_REFUSED = frozenset({400, 409, 422})


class ModzyAdapter:
    """Modzy's model jobs: text or embedded inputs, per-item results, cancel, explain."""

    capabilities: Capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, upstream: Upstream) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream

    def _options(self, request: JobRequest) -> wire.ModzyOptions:
        return parse_options(wire.ModzyOptions, request.options, self._config.defaults)

    def validate(self, request: JobRequest) -> None:
        require_input_kinds(request, self.capabilities.input_kinds)
        self._options(request)
        wire.check_request(request)

    async def submit(self, request: JobRequest) -> Submission:
        self.validate(request)
        body = wire.submit_body(request, self._options(request))
        resp = await self._upstream.request(
            "POST", wire.JOBS_PATH, operation="submit", json_body=body
        )
        if resp.status == 404:
            # On the submit route a 404 names a model or version Modzy lacks, not a job.
            said = message_from_body(resp) or "Not Found"
            raise ProviderRejected(
                self.name, f"The provider has no model {request.model.model_id!r}: {said}"
            )
        self._upstream.raise_for_status(resp)
        upstream_id, report = wire.submit_from_wire(resp.json(), self.name, len(request.inputs))
        return Submission(upstream_id=upstream_id, report=report)

    async def _job(self, job: JobHandle, operation: str) -> UpstreamResponse:
        resp = await self._upstream.request(
            "GET", wire.job_path(job.upstream_id), operation=operation
        )
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        return resp

    async def status(self, job: JobHandle) -> StatusReport:
        resp = await self._job(job, "status")
        return wire.report_from_wire(resp.json(), self.name, total=len(job.input_names))

    async def results(self, job: JobHandle) -> ResultSet:
        resp = await self._upstream.request(
            "GET", wire.results_path(job.upstream_id), operation="results"
        )
        if resp.status == 404:
            # The early 404: fine while the job exists (raises if it does not).
            await self._job(job, "results")
            return ResultSet(items={})
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        return wire.results_from_wire(resp.json(), self.name, job.input_names)

    async def cancel(self, job: JobHandle) -> StatusReport | None:
        resp = await self._upstream.request(
            "DELETE", wire.job_path(job.upstream_id), operation="cancel", idempotent=True
        )
        if resp.status in _CANCEL_REFUSED:
            # Refused: most likely the job ended first. Its status is then the answer.
            report = await self.status(job)
            if report.status.done:
                return report
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        return wire.report_from_wire(resp.json(), self.name, total=len(job.input_names))

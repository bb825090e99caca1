"""The Vody adapter: glues ``wire`` to the provider's Upstream.

Vody has no cancel route, so this class does not implement ``SupportsCancel``.
Results exist only once an inference has ended, so ``results()`` asks the status
first and returns an empty set while the inference is ``in_progress``; a
``completed`` status is turned into per-item counts by reading the results.
"""

from __future__ import annotations

from typing import Any

from adapters.base import (
    Capabilities,
    InputKind,
    JobHandle,
    JobRequest,
    JobStatus,
    ProviderConfig,
    ResultSet,
    StatusReport,
    Submission,
    parse_options,
    require_input_kinds,
)
from adapters.errors import ProviderRejected
from adapters.responses import reading_submit
from adapters.upstream import Upstream, message_from_body
from adapters.vody import wire
from problems import FieldError, UnsupportedInput

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.URL}),
    output_types=frozenset({"classification"}),
    cancel=False,
    explain=False,
)


class VodyAdapter:
    """Vody's color and pattern classification of product images."""

    capabilities: Capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, upstream: Upstream) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream

    def _options(self, request: JobRequest) -> wire.VodyOptions:
        return parse_options(wire.VodyOptions, request.options, self._config.defaults)

    def validate(self, request: JobRequest) -> None:
        require_input_kinds(request, self.capabilities.input_kinds)
        if request.explain:
            msg = "Vody models do not explain their predictions."
            raise UnsupportedInput(msg, errors=[FieldError("/options/explain", msg)])
        wire.check_model(request.model)
        wire.to_wire(request.model.model_id, request.inputs, self._options(request))

    async def submit(self, request: JobRequest) -> Submission:
        self.validate(request)
        model_id = request.model.model_id
        body = wire.to_wire(model_id, request.inputs, self._options(request))
        resp = await self._upstream.request(
            "POST", wire.submit_path(model_id), operation="submit", json_body=body
        )
        if resp.status == 404:
            # On the submit route a 404 is an unknown model, not an unknown job.
            said = message_from_body(resp) or "Not Found"
            raise ProviderRejected(self.name, f"The provider has no model {model_id!r}: {said}")
        self._upstream.raise_for_status(resp)
        with reading_submit(resp):
            upstream_id, report = wire.submit_from_wire(resp.json(), self.name, len(request.inputs))
        return Submission(
            upstream_id=upstream_id,
            state={"model": model_id, "image_paths": [item["image_path"] for item in body]},
            report=report,
        )

    async def _status_payload(self, job: JobHandle) -> Any:
        resp = await self._upstream.request(
            "GET", wire.status_path(job.upstream_id), operation="status"
        )
        self._upstream.raise_for_status(
            resp, not_found="The provider does not know this inference."
        )
        return resp.json()

    async def _fetch_results(self, job: JobHandle, *, tolerate_missing: bool) -> ResultSet | None:
        resp = await self._upstream.request(
            "GET", wire.results_path(job.upstream_id), operation="results"
        )
        if resp.status == 404 and tolerate_missing:
            return None
        self._upstream.raise_for_status(
            resp, not_found="The provider has no results for this inference."
        )
        paths = job.state.get("image_paths")
        return wire.results_from_wire(
            resp.json(),
            self.name,
            job.input_names,
            paths if isinstance(paths, list) else (),
        )

    async def status(self, job: JobHandle) -> StatusReport:
        payload = await self._status_payload(job)
        results = None
        if wire.status_word(payload, self.name).lower() == wire.COMPLETED:
            results = await self._fetch_results(job, tolerate_missing=False)
        return wire.report_from_wire(
            payload, self.name, total=len(job.input_names), results=results
        )

    async def results(self, job: JobHandle) -> ResultSet:
        payload = await self._status_payload(job)
        report = wire.report_from_wire(payload, self.name, total=len(job.input_names))
        if not report.status.done:
            return ResultSet(items={})
        results = await self._fetch_results(job, tolerate_missing=report.status is JobStatus.FAILED)
        if results is None:
            return wire.failed_results(job.input_names, wire.error_message(payload))
        return results

"""The Modzy adapter: glues ``wire`` to the provider's Upstream.

Before a model version's first job the adapter reads the version's details (``GET
/models/{id}/versions/{version}``, as the official library does) for its input names,
and keeps them for the life of the adapter: each job's values go under the model's own
names (``inputs.py``), never a guess that would fail every item at the provider.

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
    ModelRef,
    ProviderConfig,
    ResultSet,
    StatusReport,
    Submission,
    parse_options,
    require_input_kinds,
)
from adapters.errors import ProviderRejected
from adapters.modzy import items, wire
from adapters.modzy.inputs import input_names_from_wire
from adapters.responses import reading_submit
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
#: Model versions whose input names an adapter keeps (the oldest go first past it).
MAX_CACHED_VERSIONS = 512


class ModzyAdapter:
    """Modzy's model jobs: text or embedded inputs, per-item results, cancel, explain."""

    capabilities: Capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, upstream: Upstream) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream
        #: Input names per (model id, version); None: the version declares none usable.
        self._model_inputs: dict[tuple[str, str], tuple[str, ...] | None] = {}

    def _options(self, request: JobRequest) -> wire.ModzyOptions:
        return parse_options(wire.ModzyOptions, request.options, self._config.defaults)

    def validate(self, request: JobRequest) -> None:
        require_input_kinds(request, self.capabilities.input_kinds)
        self._options(request)
        wire.check_request(request)

    def _no_model(self, model: ModelRef, resp: UpstreamResponse) -> ProviderRejected:
        said = message_from_body(resp) or "Not Found"
        return ProviderRejected(self.name, f"The provider has no model {model.model_id!r}: {said}")

    async def model_inputs(self, model: ModelRef) -> tuple[str, ...] | None:
        """The model version's input names, read once per version (None: none declared).

        A 404 is a model or version the provider lacks; a 403 (a key that may run jobs
        but not read models) leaves the names unknown, to be guessed as before.
        """
        key = (model.model_id, model.version or "")
        if key in self._model_inputs:
            return self._model_inputs[key]
        resp = await self._upstream.request(
            "GET", wire.model_version_path(*key), operation="model_version"
        )
        if resp.status == 404:
            raise self._no_model(model, resp)
        if resp.status == 403:
            names = None
        else:
            self._upstream.raise_for_status(resp)
            names = input_names_from_wire(resp.json())
        while len(self._model_inputs) >= MAX_CACHED_VERSIONS:
            del self._model_inputs[next(iter(self._model_inputs))]
        self._model_inputs[key] = names
        return names

    async def submit(self, request: JobRequest) -> Submission:
        self.validate(request)
        names = await self.model_inputs(request.model)
        body = wire.submit_body(request, self._options(request), names)
        resp = await self._upstream.request(
            "POST", wire.JOBS_PATH, operation="submit", json_body=body
        )
        if resp.status == 404:
            # On the submit route a 404 names a model or version Modzy lacks, not a job.
            raise self._no_model(request.model, resp)
        self._upstream.raise_for_status(resp)
        with reading_submit(resp):
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
        return items.results_from_wire(resp.json(), self.name, job.input_names)

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

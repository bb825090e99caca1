"""The AnnoLab adapter: glues ``wire`` to the provider's Upstream.

AnnoLab has no cancel route, so this class does not implement ``SupportsCancel``
(the gateway answers a cancel with 422 ``cancel_not_supported``). It has no results
route either: the annotations come through a project export, which the official
library starts once an inference is ``Finished`` and polls every 5 s for up to an hour.
That is a workflow of several steps, taken one per status check and kept in the job's
state (``StatusReport.state``), so each check, on any replica, takes the next step:

1. the inference runs: report it running;
2. it finished: start the export, keep its status URL (``state["export"]``), and
   report the job still running (``Finished (export ...)``);
3. poll the export's status URL, one call per check, with no cap on how long it takes;
   an export that errs is started again, up to ``EXPORT_TRIES`` times, then fails the job;
4. the export finished: keep its download URL, and report the inference's outcome.

``results()`` then downloads the zip from the kept URL (one call, no new export). Where
no finished export is kept (a job stored before this workflow, or a signed link that
expired), it exports inline, waiting at most ``export_timeout`` per read; an export not
done by then goes on at AnnoLab, and the next read here polls that same export (its
status URL is remembered per job, ``INLINE_EXPORTS`` at most) rather than start another.

The export returns everything in the output layer for those sources, so annotations
other runs or people put in the same layer come back too: point jobs at a layer the
model owns (e.g. "Model Predictions", not "Gold Set").
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from adapters.annolab import wire
from adapters.base import (
    Capabilities,
    Counts,
    ErrorInfo,
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
from adapters.errors import ProviderBadResponse, ProviderRejected, ProviderUnavailable
from adapters.responses import reading_submit
from adapters.upstream import Upstream, UpstreamResponse, message_from_body
from problems import FieldError, UnsupportedInput

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.REF}),
    output_types=frozenset({"annotations"}),
    cancel=False,
    explain=False,
)

#: Statuses an export route may answer that still mean the provider's usual errors.
_MAPPED_STATUSES = frozenset({401, 403, 408, 429})
#: What a signed download link answers once it has expired (S3: 403) or is gone.
_EXPIRED_LINK = frozenset({403, 404, 410})
#: Exports of one job started at most this often before an erring export fails it.
EXPORT_TRIES = 3
#: Inline exports a process remembers (their status URLs, by job), the oldest forgotten.
INLINE_EXPORTS = 1000


class AnnoLabAdapter:
    """AnnoLab model inferences over source files the provider already holds."""

    capabilities: Capabilities = CAPABILITIES
    #: How long ``results()`` waits for an export, and how often it asks.
    export_timeout: float = 10.0
    export_poll_first: float = 0.1
    export_poll_max: float = 0.5

    def __init__(self, config: ProviderConfig, upstream: Upstream) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream
        #: Inline exports under way: job id → status URL (``_export``).
        self._inline: OrderedDict[str, str] = OrderedDict()

    def _options(self, request: JobRequest) -> wire.AnnoLabOptions:
        return parse_options(wire.AnnoLabOptions, request.options, self._config.defaults)

    def validate(self, request: JobRequest) -> None:
        require_input_kinds(request, self.capabilities.input_kinds)
        if request.explain:
            msg = "AnnoLab models do not explain their predictions."
            raise UnsupportedInput(msg, errors=[FieldError("/options/explain", msg)])
        wire.check_model(request.model)
        wire.source_ids(request.inputs)
        self._options(request)

    async def submit(self, request: JobRequest) -> Submission:
        self.validate(request)
        sources = wire.source_ids(request.inputs)
        options = self._options(request)
        body = wire.submit_body(request.model.model_id, sources, options)
        resp = await self._upstream.request(
            "POST", wire.SUBMIT_PATH, operation="submit", json_body=body
        )
        if resp.status == 404:
            # On the submit route a 404 is an unknown project, layer, model or group.
            said = message_from_body(resp) or "Not Found"
            raise ProviderRejected(self.name, f"The provider rejected the request: {said}")
        self._upstream.raise_for_status(resp)
        with reading_submit(resp):
            submitted = wire.submit_from_wire(resp.json(), self.name, sources, options)
        return Submission(
            upstream_id=submitted.upstream_id, state=submitted.state, report=submitted.report
        )

    async def _status_payload(self, job: JobHandle) -> Any:
        resp = await self._upstream.request(
            "GET", wire.status_path(job.upstream_id), operation="status"
        )
        self._upstream.raise_for_status(
            resp, not_found="The provider does not know this inference."
        )
        return resp.json()

    async def status(self, job: JobHandle) -> StatusReport:
        export = job.state.get("export")
        if isinstance(export, dict) and isinstance(export.get("status_url"), str):
            if export.get("download_url"):
                return await self._finished(job)
            return await self._poll_export(job, export)
        report = await self._finished(job)
        if not report.status.done or report.status is JobStatus.FAILED:
            return report
        # The inference is done: its annotations come through an export, started once.
        status_url = await self._start_export(job.state)
        return self._exporting(job, {"status_url": status_url, "tries": 1}, wire.EXPORT_STARTED)

    async def _finished(self, job: JobHandle) -> StatusReport:
        """The inference's own status (kept state untouched)."""
        payload = await self._status_payload(job)
        sources = wire.sources_from_state(job.state, len(job.input_names))
        return wire.report_from_wire(payload, self.name, sources)

    def _exporting(
        self, job: JobHandle, export: dict[str, Any], word: str, *, known: bool = True
    ) -> StatusReport:
        return StatusReport(
            status=JobStatus.RUNNING,
            upstream_status=f"Finished (export {word})",
            counts=Counts.all_pending(len(job.input_names)),
            state={**job.state, "export": export},
            # A word the SDK does not know: logged once, and the job failed if it stands
            # for unknown_status_grace_seconds (gateway.jobs.records), not run forever.
            known=known,
        )

    async def _poll_export(self, job: JobHandle, export: dict[str, Any]) -> StatusReport:
        status_url = str(export["status_url"])
        resp = await self._upstream.request("GET", "", operation="status", absolute_url=status_url)
        self._check_export(resp)
        progress = wire.export_state_from_wire(resp.json(), self.name, status_url)
        if not progress.done:
            if progress.unknown is not None:
                return self._exporting(job, export, progress.unknown, known=False)
            return self._exporting(job, export, progress.status)
        if progress.status == wire.EXPORT_ERRORED or progress.download_url is None:
            tries = int(export.get("tries") or 1)
            if tries >= EXPORT_TRIES:
                said = f": {progress.error}" if progress.error else "."
                return StatusReport(
                    status=JobStatus.FAILED,
                    upstream_status="Finished (export errored)",
                    counts=Counts(total=len(job.input_names), failed=len(job.input_names)),
                    error=ErrorInfo(
                        "upstream_failed",
                        f"The provider could not export the job's annotations "
                        f"({tries} tries){said}",
                    ),
                    state={**job.state, "export": {**export, "errored": True}},
                )
            status_url = await self._start_export(job.state)
            return self._exporting(
                job, {"status_url": status_url, "tries": tries + 1}, wire.EXPORT_STARTED
            )
        report = await self._finished(job)
        return replace(
            report,
            state={**job.state, "export": {**export, "download_url": progress.download_url}},
        )

    async def results(self, job: JobHandle) -> ResultSet:
        payload = await self._status_payload(job)
        sources = wire.sources_from_state(job.state, len(job.input_names))
        word = wire.status_word(payload, self.name)
        status = wire.job_status(word)
        errors = wire.source_errors(payload)
        if status is JobStatus.FAILED:
            return wire.failed_results(
                job.input_names, sources, wire.error_message(payload), errors
            )
        if status is not JobStatus.SUCCEEDED:
            return ResultSet(items={})
        export = job.state.get("export")
        kept = export.get("download_url") if isinstance(export, dict) else None
        records = await self._download(kept) if isinstance(kept, str) else None
        if records is None:
            records = await self._export(job)
        layer_id = job.state.get("layer_id")
        return wire.results_from_wire(
            records,
            job.input_names,
            sources,
            layer=str(job.state["layer"]),
            layer_id=layer_id if isinstance(layer_id, int) else None,
            errors=errors,
        )

    # -- the project export ---------------------------------------------------------------

    def _check_export(self, resp: UpstreamResponse) -> None:
        """An export route's failure is the provider's, whatever 4xx it says."""
        if resp.ok:
            return
        if 400 <= resp.status < 500 and resp.status not in _MAPPED_STATUSES:
            raise ProviderBadResponse(
                self.name,
                f"The provider could not export the job's annotations (HTTP {resp.status}).",
            )
        self._upstream.raise_for_status(resp)

    async def _start_export(self, state: Any) -> str:
        """Start an export of the job's sources and layer; its status URL."""
        resp = await self._upstream.request(
            "POST",
            wire.EXPORT_PATH,
            operation="results",
            json_body=wire.export_body(state),
            # Starting a second export of the same annotations is harmless.
            idempotent=True,
        )
        self._check_export(resp)
        return wire.export_status_url(resp.json(), self.name)

    async def _download(self, url: str) -> list[dict[str, Any]] | None:
        """The annotations of a finished export's zip; None if the signed link has
        expired or is gone (the caller exports again)."""
        # A signed link, often to cloud storage (S3): no AnnoLab key goes with it.
        resp = await self._upstream.request(
            "GET",
            "",
            operation="results",
            signed_url=url,
            headers={"Accept": "application/zip, application/octet-stream"},
        )
        if resp.status in _EXPIRED_LINK:
            return None
        self._check_export(resp)
        return wire.annotations_from_zip(resp.body, self.name)

    async def _export(self, job: JobHandle) -> list[dict[str, Any]]:
        """Export inline, waiting at most ``export_timeout`` (no kept export to read): the
        export an earlier read here started, if any, else a new one."""
        key = job.upstream_id
        status_url = self._inline.get(key)
        if status_url is None:
            status_url = await self._start_export(job.state)
            self._inline[key] = status_url
            while len(self._inline) > INLINE_EXPORTS:
                self._inline.popitem(last=False)
        export = await self._wait_for_export(status_url)  # raises 503 while it runs
        self._inline.pop(key, None)
        if export.status == wire.EXPORT_ERRORED or export.download_url is None:
            raise ProviderBadResponse(self.name, "The provider's export of the results failed.")
        records = await self._download(export.download_url)
        if records is None:
            raise ProviderBadResponse(self.name, "The provider's fresh export link was refused.")
        return records

    async def _wait_for_export(self, status_url: str) -> wire.ExportState:
        deadline = time.monotonic() + self.export_timeout
        delay = self.export_poll_first
        while True:
            resp = await self._upstream.request(
                "GET", "", operation="results", absolute_url=status_url
            )
            self._check_export(resp)
            export = wire.export_state_from_wire(resp.json(), self.name, status_url)
            if export.done:
                return export
            if time.monotonic() + delay > deadline:
                raise ProviderUnavailable(
                    self.name,
                    "The provider is still exporting the results; try again in 5 s.",
                    headers={"Retry-After": "5"},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.export_poll_max)

"""The LlamaCloud adapter: wire.py glued to one Upstream.

A submit uploads every ``data`` input first and creates the classifier job only when
all uploads worked, so a failed upload never leaves a job pointing at missing files
(the files already uploaded are deleted, best effort). v1 has no cancel, so this
class does not implement ``SupportsCancel``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from adapters.base import (
    Capabilities,
    InputKind,
    JobHandle,
    JobInput,
    JobRequest,
    JobStatus,
    ProviderConfig,
    ResultSet,
    StatusReport,
    Submission,
    parse_options,
    require_input_kinds,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
)
from adapters.llamacloud import wire
from adapters.upstream import Upstream, UpstreamResponse, message_from_body
from problems import FieldError, ValidationFailed

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.DATA, InputKind.REF}),
    output_types=frozenset({"classification"}),
    cancel=False,
    explain=False,
)

#: Results page size we ask for (the provider may send fewer).
RESULTS_PAGE_SIZE = 100
#: A provider whose pages never end is broken; stop walking it here.
MAX_RESULT_PAGES = 1000


class LlamaCloudAdapter:
    """Document classification with LlamaCloud's v1 classifier jobs."""

    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, upstream: Upstream) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream

    # -- validate ---------------------------------------------------------------------

    def validate(self, request: JobRequest) -> None:
        if request.model.model_id != wire.MODEL_ID:
            raise ValidationFailed(
                f"Provider {self.name!r} has no model {request.model.model_id!r}.",
                errors=[FieldError("/model", f"the only model is {wire.MODEL_ID!r}")],
            )
        require_input_kinds(request, CAPABILITIES.input_kinds)
        bad = [
            FieldError(
                f"/inputs/{i}/ref",
                f"input {item.name!r}: {item.ref!r} is not a LlamaCloud file id "
                "(a UUID or 'dfl-...')",
            )
            for i, item in enumerate(request.inputs)
            if item.kind is InputKind.REF and not wire.is_file_id(item.ref or "")
        ]
        if bad:
            raise ValidationFailed(bad[0].message, errors=bad)
        self._options(request)

    def _options(self, request: JobRequest) -> wire.LlamaCloudOptions:
        return parse_options(wire.LlamaCloudOptions, request.options, self._config.defaults)

    # -- submit -----------------------------------------------------------------------

    async def submit(self, request: JobRequest) -> Submission:
        options = self._options(request)
        params = wire.query_params(options)
        file_ids: dict[str, str] = {}
        uploaded: list[str] = []
        for item in request.inputs:
            if item.kind is InputKind.REF:
                file_ids[item.name] = item.ref or ""
                continue
            try:
                file_id = await self._upload(item, params)
            except ProviderError as exc:
                # A provider that timed out would make every delete time out too.
                if not isinstance(exc, ProviderTimeout):
                    await self._discard(uploaded, params)
                raise
            uploaded.append(file_id)
            file_ids[item.name] = file_id
        resp = await self._upstream.request(
            "POST",
            wire.JOBS_PATH,
            operation="submit",
            json_body=wire.create_job_body(file_ids.values(), options),
            params=params,
        )
        if not resp.ok:
            # A 4xx is a refusal: no job exists, so our uploads are orphans. After a
            # 5xx the job may exist, and its files must stay.
            if 400 <= resp.status < 500 and resp.status != 408:
                await self._discard(uploaded, params)
            self._raise(resp)
        payload = resp.json()
        return Submission(
            upstream_id=wire.id_from_wire(payload, "job", provider=self.name),
            state={"file_ids": file_ids, "params": params},
            report=wire.report_from_wire(payload, provider=self.name),
        )

    async def _upload(self, item: JobInput, params: Mapping[str, str]) -> str:
        resp = await self._upstream.request(
            "POST",
            wire.FILES_PATH,
            operation="upload",
            data=lambda: wire.upload_form(item),
            params=params,
        )
        self._raise(resp)
        return wire.id_from_wire(resp.json(), "uploaded file", provider=self.name)

    async def _discard(self, file_ids: list[str], params: Mapping[str, str]) -> None:
        """Delete files of a job that will not exist; failures are left alone."""
        await asyncio.gather(*(self._delete_quietly(fid, params) for fid in file_ids))

    async def _delete_quietly(self, file_id: str, params: Mapping[str, str]) -> None:
        try:
            await self._upstream.request(
                "DELETE",
                wire.file_path(file_id),
                operation="delete_file",
                params=params,
                idempotent=False,
            )
        except ProviderError:
            return

    def _raise(self, resp: UpstreamResponse) -> None:
        """A non-2xx answer to an upload or create: 404 there means an unknown file."""
        if resp.status == 404:
            said = message_from_body(resp)
            raise ProviderRejected(
                self.name,
                f"The provider rejected the request: {said}"
                if said
                else "The provider rejected the request (HTTP 404).",
            )
        self._upstream.raise_for_status(resp)

    # -- status and results -----------------------------------------------------------

    async def status(self, job: JobHandle) -> StatusReport:
        report = await self._job_report(job)
        if report.status is JobStatus.PARTIALLY_SUCCEEDED:
            # The job does not count its files; its results do.
            items = wire.items_from_wire(await self._result_items(job), _file_ids(job))
            counts = wire.counts_from_items(items, len(job.input_names))
            return StatusReport(
                status=report.status, upstream_status=report.upstream_status, counts=counts
            )
        return report

    async def results(self, job: JobHandle) -> ResultSet:
        report = await self._job_report(job)
        if not report.status.done:
            # v1 has no partial results: items appear when the job ends.
            return ResultSet(items={})
        items = wire.items_from_wire(await self._result_items(job), _file_ids(job))
        return ResultSet(items=wire.finish_missing(items, job.input_names, report))

    async def _job_report(self, job: JobHandle) -> StatusReport:
        resp = await self._upstream.request(
            "GET", wire.job_path(job.upstream_id), operation="status", params=_params(job)
        )
        self._upstream.raise_for_status(resp)
        return wire.report_from_wire(resp.json(), provider=self.name)

    async def _result_items(self, job: JobHandle) -> list[dict[str, Any]]:
        """Every results item, walking ``next_page_token`` to the last page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_RESULT_PAGES):
            params = {**_params(job), "page_size": str(RESULTS_PAGE_SIZE)}
            if token is not None:
                params["page_token"] = token
            resp = await self._upstream.request(
                "GET", wire.results_path(job.upstream_id), operation="results", params=params
            )
            self._upstream.raise_for_status(resp)
            page, token = wire.results_page_from_wire(resp.json(), provider=self.name)
            items.extend(page)
            if token is None:
                return items
            if token in seen:
                break
            seen.add(token)
        raise ProviderBadResponse(self.name, "The provider's result pages never end.")


def _params(job: JobHandle) -> dict[str, str]:
    params = job.state.get("params")
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}


def _file_ids(job: JobHandle) -> dict[str, str]:
    file_ids = job.state.get("file_ids")
    if not isinstance(file_ids, dict):
        return {}
    return {str(k): str(v) for k, v in file_ids.items()}

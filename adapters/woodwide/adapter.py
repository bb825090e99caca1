"""The Wood Wide adapter: wire.py, tables.py and normalize.py glued to one Upstream.

Results exist only once a job has ``succeeded`` (the provider answers 409 before),
so ``results()`` reads the job first and asks for nothing while it runs. A finished
job's rows come from the signed results file (``inference_results_uri``: a link to
cloud storage, fetched through Upstream's signed-URL path, so without the API key,
under the same size cap and host guard), or, when the results are large and the
provider says they are ``row_paginatable``, from the ``/results/rows`` pages (the
combined table: inputs and outputs; only output columns reach the outputs). Item
counts need those rows (Wood Wide does not count failures), so ``status()`` reads
them when the job succeeds and keeps the set for the ``results()`` call that follows.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
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
from adapters.errors import ProviderBadResponse
from adapters.responses import reading_submit
from adapters.upstream import Upstream, message_from_body
from adapters.woodwide import normalize, tables, wire
from adapters.woodwide.tables import Table

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.RECORD, InputKind.REF}),
    output_types=frozenset(
        {"classification", "regression", "clustering", "anomaly", "embedding", "match", "json"}
    ),
    cancel=True,
    explain=False,
)

#: Results with more rows than this are read in pages rather than as one file.
FILE_ROW_LIMIT = 500
#: Rows per ``/results/rows`` page we ask for (the provider caps it at 500).
ROWS_PAGE_SIZE = 500
#: A provider whose row pages never end is broken; stop walking it here.
MAX_ROW_PAGES = 10_000
#: What a signed link answers once it has expired (S3: 403) or is gone.
_EXPIRED_LINK = frozenset({403, 404, 410})
#: Finished result sets kept between ``status()`` and ``results()``.
_KEEP_FINISHED = 16
_NOT_FOUND = "The provider does not know this job."


class WoodWideAdapter:
    """Tabular AutoML inference: records as one CSV upload, or a stored dataset."""

    capabilities: Capabilities = CAPABILITIES

    def __init__(
        self,
        config: ProviderConfig,
        upstream: Upstream,
        *,
        file_row_limit: int = FILE_ROW_LIMIT,
        rows_page_size: int = ROWS_PAGE_SIZE,
        parquet_ok: bool | None = None,
    ) -> None:
        self.name = config.name
        self._config = config
        self._upstream = upstream
        self._file_row_limit = file_row_limit
        self._rows_page_size = rows_page_size
        self._parquet_ok = tables.parquet_available() if parquet_ok is None else parquet_ok
        self._finished: OrderedDict[tuple[str, str], ResultSet] = OrderedDict()

    # -- validate and submit ------------------------------------------------------------

    def _options(self, request: JobRequest) -> wire.WoodWideOptions:
        options = parse_options(wire.WoodWideOptions, request.options, self._config.defaults)
        wire.check_request(request, options)
        return options

    def validate(self, request: JobRequest) -> None:
        require_input_kinds(request, CAPABILITIES.input_kinds)
        self._options(request)

    async def submit(self, request: JobRequest) -> Submission:
        self.validate(request)
        options = self._options(request)
        output_type = wire.effective_output_type(options.output_type, self._parquet_ok)
        version = options.model_version_id or request.model.version
        model_id = request.model.model_id
        if options.on_dataset:
            resp = await self._upstream.request(
                "POST",
                wire.infer_batch_path(model_id),
                operation="submit",
                json_body=wire.batch_body(options, output_type, version),
            )
        else:
            csv_text = wire.records_csv([item.record or {} for item in request.inputs])
            fields = wire.infer_fields(options, output_type, version)
            resp = await self._upstream.request(
                "POST",
                wire.infer_async_path(model_id),
                operation="submit",
                data=lambda: wire.upload_form(csv_text, fields),
            )
        if resp.status == 404:
            # On a submit route a 404 names a model or dataset Wood Wide lacks, not a job.
            raise wire.submit_not_found(message_from_body(resp) or "Not Found", options)
        self._upstream.raise_for_status(resp)
        with reading_submit(resp):
            payload = resp.json()
            return Submission(
                upstream_id=wire.job_id_from_wire(payload, self.name),
                state=wire.submit_state(request, options, output_type),
                report=wire.submit_report(payload, self.name),
            )

    # -- status, results, cancel ----------------------------------------------------------

    async def _detail(self, job: JobHandle, operation: str) -> Mapping[str, Any]:
        resp = await self._upstream.request(
            "GET", wire.job_path(job.upstream_id), operation=operation
        )
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        payload = resp.json()
        if not isinstance(payload, Mapping):
            raise ProviderBadResponse(self.name, "The provider's job is not a JSON object.")
        return payload

    async def status(self, job: JobHandle) -> StatusReport:
        detail = await self._detail(job, "status")
        report = wire.report_from_wire(detail, self.name)
        if report.status is not JobStatus.SUCCEEDED:
            return report
        results = await self._collect(job, detail)
        if results is None:  # the results are not readable yet: still finishing
            return StatusReport(status=JobStatus.RUNNING, upstream_status=report.upstream_status)
        self._finished[_memo_key(job)] = results
        while len(self._finished) > _KEEP_FINISHED:
            self._finished.popitem(last=False)
        counts = normalize.counts_from_items(results.items, len(job.input_names))
        return wire.finished_report(report, counts)

    async def results(self, job: JobHandle) -> ResultSet:
        kept = self._finished.pop(_memo_key(job), None)
        if kept is not None:
            return kept
        detail = await self._detail(job, "results")
        report = wire.report_from_wire(detail, self.name)
        if not report.status.done:
            return ResultSet(items={})  # no partial results: never ask before the end
        if report.status is not JobStatus.SUCCEEDED:
            return ResultSet(items=normalize.finish_unfinished(job.input_names, report))
        return await self._collect(job, detail) or ResultSet(items={})

    async def cancel(self, job: JobHandle) -> StatusReport | None:
        resp = await self._upstream.request(
            "POST", wire.cancel_path(job.upstream_id), operation="cancel", idempotent=True
        )
        if resp.status in (400, 409):
            # Refused: most likely the job ended first. Its status is then the answer.
            report = await self.status(job)
            if report.status.done:
                return report
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        report = wire.report_from_wire(resp.json(), self.name)
        if report.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return await self.status(job)  # it ended first: its counts or error
        return report

    # -- reading the rows -----------------------------------------------------------------

    async def _collect(self, job: JobHandle, detail: Mapping[str, Any]) -> ResultSet | None:
        """The normalized results of a succeeded job; None if they are not ready yet."""
        resp = await self._upstream.request(
            "GET", wire.results_path(job.upstream_id), operation="results"
        )
        if resp.status in (400, 409):  # "job not finished": a moment early
            return None
        self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
        meta = tables.results_meta_from_wire(resp.json(), self.name)
        plan = tables.read_plan(meta, self._upstream.url(""), self._file_row_limit)
        table = await self._file(job, meta) if plan == "file" else None
        combined = table is None
        if table is None:
            table = await self._rows(job)
        columns = job.state.get("columns")
        items, job_outputs = normalize.items_from_table(
            table,
            wire.model_type_of(detail),
            _row_names(job),
            meta.failed_row_ids,
            descriptions=meta.descriptions,
            combined=combined,
            input_columns=columns if isinstance(columns, list) else (),
        )
        return ResultSet(items=items, job_outputs=job_outputs)

    async def _file(self, job: JobHandle, meta: tables.ResultsMeta) -> Table | None:
        """The results file; None if its link has expired and the rows can be paged."""
        if meta.uri is None:
            return None
        requested = _output_type(job)
        # A signed link, usually to cloud storage: the signature is its credential, so
        # no API key goes with it (a storage host refuses a request carrying both).
        resp = await self._upstream.request(
            "GET",
            "",
            signed_url=meta.uri,
            operation="results_file",
            # A file in any format (csv, json, parquet), as the official library asks.
            headers={"Accept": "*/*"},
        )
        if resp.status in _EXPIRED_LINK and meta.row_paginatable is True:
            return None
        if 400 <= resp.status < 500 and resp.status not in (408, 429):
            # A storage host's refusal (an expired link: 403) is neither the caller's
            # mistake nor a lost job: the provider handed us a link that does not work.
            raise ProviderBadResponse(
                self.name, f"The provider's results link was refused (HTTP {resp.status})."
            )
        self._upstream.raise_for_status(resp)
        fmt = tables.output_type_of(resp.content_type, requested)
        return tables.table_from_file(resp.body, fmt, provider=self.name)

    async def _rows(self, job: JobHandle) -> Table:
        """Every result row, walking ``limit``/``offset`` pages to the total."""
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_ROW_PAGES):
            params = {"limit": str(self._rows_page_size), "offset": str(len(rows))}
            resp = await self._upstream.request(
                "GET", wire.rows_path(job.upstream_id), operation="results", params=params
            )
            self._upstream.raise_for_status(resp, not_found=_NOT_FOUND)
            page, total, limit = tables.rows_page_from_wire(resp.json(), self.name)
            rows.extend(page)
            if (
                not page
                or (total is not None and len(rows) >= total)
                or (total is None and len(page) < (limit or self._rows_page_size))
            ):
                return tables.table_from_rows(rows)
        raise ProviderBadResponse(self.name, "The provider's result pages never end.")


def _row_names(job: JobHandle) -> dict[str, str]:
    rows = job.state.get("rows")
    if isinstance(rows, Mapping):
        return {str(k): str(v) for k, v in rows.items()}
    return {str(i): name for i, name in enumerate(job.input_names)}


def _memo_key(job: JobHandle) -> tuple[str, str]:
    """Key a kept result set by upstream job *and* named rows.

    Identical ``infer-batch`` requests share one upstream job across gateway jobs.
    """
    return job.upstream_id, json.dumps(_row_names(job))


def _output_type(job: JobHandle) -> wire.OutputType:
    value = job.state.get("output_type")
    return value if value in ("json", "csv", "parquet") else "json"

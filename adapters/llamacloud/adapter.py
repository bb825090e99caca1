"""The LlamaCloud adapter: wire.py glued to one Upstream.

LlamaCloud's classify API takes one file per job, so a gateway job of N inputs is N
provider jobs. Submit uploads every ``data`` input, then creates one classify job per
input; only when every create worked is the gateway job accepted (otherwise the jobs
already created are cancelled and, after a refusal, the uploads deleted, best effort).
Each create carries a ``transaction_id`` made from the submit's key and the input's
position, so a create resent after a lost answer returns the job the first one made:
creates are retried like reads.

The gateway job's ``upstream_id`` is the first input's classify job; the state kept
with the record holds the other inputs' job ids and every input's last status word,
so a status check asks only about jobs still running (in one list call per
``LIST_BATCH`` jobs) and results are read once each input has ended.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar, cast

from adapters.base import (
    Capabilities,
    InputKind,
    ItemResult,
    JobHandle,
    JobInput,
    JobRequest,
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
    UpstreamJobNotFound,
)
from adapters.llamacloud import wire
from adapters.responses import reading_submit
from adapters.upstream import Upstream, UpstreamResponse, message_from_body
from problems import FieldError, ValidationFailed

CAPABILITIES = Capabilities(
    input_kinds=frozenset({InputKind.DATA, InputKind.REF}),
    output_types=frozenset({"classification"}),
    cancel=True,
    explain=False,
)

#: Job ids asked for in one list call (each id is ~40 characters of query string).
LIST_BATCH = 50
#: Calls one submit, check or cancel has in flight at once; the provider's pacing
#: and rate limits still apply to each.
PARALLEL_CALLS = 8
#: A provider whose pages never end is broken; stop walking it here.
MAX_PAGES = 1000

_T = TypeVar("_T")


@dataclass
class _Progress:
    """A gateway job's classify jobs, one per input, as kept in the job record."""

    params: dict[str, str]
    ids: list[str]
    words: list[str]
    #: Why an input failed, by position (a FAILED job, no result, a lost job).
    failed: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, job: JobHandle) -> _Progress:
        state = job.state
        rest = state.get("ids")
        words = state.get("words")
        if not isinstance(rest, list) or not isinstance(words, list):
            raise ProviderBadResponse(
                wire.PROVIDER,
                "This job was submitted through LlamaCloud's retired v1 classifier API, "
                "which the gateway no longer speaks; submit it again.",
            )
        raw_params = state.get("params")
        params = (
            {str(k): str(v) for k, v in raw_params.items()} if isinstance(raw_params, dict) else {}
        )
        raw_failed = state.get("failed")
        failed = (
            {int(k): str(v) for k, v in raw_failed.items()} if isinstance(raw_failed, dict) else {}
        )
        return cls(
            params=params,
            ids=[job.upstream_id, *(str(i) for i in rest)],
            words=[str(w) for w in words],
            failed=failed,
        )

    def state(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "ids": self.ids[1:],
            "words": self.words,
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
        }

    def learn(self, index: int, raw: Mapping[str, Any]) -> None:
        self.words[index] = wire.word_from_wire(raw)
        failure = wire.failure_of(raw)
        if failure is not None:
            self.failed[index] = failure

    def lose(self, index: int) -> None:
        self.words[index] = "GONE"
        self.failed[index] = wire.GONE_MESSAGE

    def report(self, *, changed: bool) -> StatusReport:
        report = wire.report_from_words(self.words, self.failed)
        return replace(report, state=self.state()) if changed else report


class LlamaCloudAdapter:
    """Document classification with LlamaCloud's classify jobs, one per input."""

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
                f"input {item.name!r}: {item.ref!r} is not a LlamaCloud file id ('dfl-...') "
                "or parse job id ('pjb-...')",
            )
            for i, item in enumerate(request.inputs)
            if item.kind is InputKind.REF and not wire.is_file_input(item.ref or "")
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
        key = request.submit_key or uuid.uuid4().hex
        uploads = [i for i, item in enumerate(request.inputs) if item.kind is InputKind.DATA]
        uploaded: dict[int, str] = {}

        async def upload(index: int) -> None:
            uploaded[index] = await self._upload(request.inputs[index], params)

        try:
            await _bounded([partial(upload, i) for i in uploads])
        except ProviderError as exc:
            # A provider that timed out would make every delete time out too.
            if not isinstance(exc, ProviderTimeout):
                await self._discard(list(uploaded.values()), params)
            raise
        inputs = [uploaded.get(i) or item.ref or "" for i, item in enumerate(request.inputs)]
        created: dict[int, Mapping[str, Any]] = {}

        async def create(index: int) -> None:
            body = wire.create_body(inputs[index], options, wire.transaction_id(key, index))
            created[index] = await self._create(body, params)

        try:
            await _bounded([partial(create, i) for i in range(len(inputs))])
        except ProviderError as exc:
            await self._cancel_quietly([str(j["id"]) for j in created.values()], params)
            # After a refusal no job holds the uploads; after a 5xx or a timeout the
            # failed create may have made one, which must keep its file.
            if isinstance(exc, ProviderRejected):
                await self._discard(list(uploaded.values()), params)
            raise
        progress = _Progress(
            params=params,
            ids=[wire.id_from_wire(created[i], "classify job") for i in range(len(inputs))],
            words=["PENDING"] * len(inputs),
        )
        for index in range(len(inputs)):
            progress.learn(index, created[index])
        return Submission(
            upstream_id=progress.ids[0],
            state=progress.state(),
            report=progress.report(changed=False),
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

    async def _create(self, body: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        resp = await self._upstream.request(
            "POST",
            wire.CLASSIFY_PATH,
            operation="submit",
            json_body=body,
            params=params,
            # transaction_id: a resend returns the job the first attempt made.
            idempotent=True,
        )
        self._raise(resp)
        with reading_submit(resp):
            payload = resp.json()
            wire.id_from_wire(payload, "classify job", provider=self.name)
            wire.word_from_wire(payload, provider=self.name)
            return dict(payload)

    async def _discard(self, file_ids: list[str], params: Mapping[str, str]) -> None:
        """Delete files no job will read; failures are left alone."""
        await _bounded(
            [partial(self._quietly, "DELETE", wire.file_path(f), params) for f in file_ids]
        )

    async def _cancel_quietly(self, job_ids: list[str], params: Mapping[str, str]) -> None:
        await _bounded(
            [partial(self._quietly, "POST", wire.cancel_path(j), params) for j in job_ids]
        )

    async def _quietly(self, method: str, path: str, params: Mapping[str, str]) -> None:
        try:
            await self._upstream.request(
                method,
                path,
                operation="cleanup",
                params=params,
                headers=wire.EMPTY_JSON if method == "POST" else None,
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
        progress = _Progress.of(job)
        running = [i for i, w in enumerate(progress.words) if w not in wire.TERMINAL_WORDS]
        if not running:
            return progress.report(changed=False)
        before = (list(progress.words), dict(progress.failed))
        found = await self._jobs([progress.ids[i] for i in running], progress.params)
        for index in running:
            raw = found.get(progress.ids[index])
            if raw is None:
                progress.lose(index)
            else:
                progress.learn(index, raw)
        if all(w == "GONE" for w in progress.words):
            raise UpstreamJobNotFound(self.name)
        return progress.report(changed=(progress.words, progress.failed) != before)

    async def results(self, job: JobHandle) -> ResultSet:
        progress = _Progress.of(job)
        ended = [
            i for i, w in enumerate(progress.words) if w in wire.TERMINAL_WORDS and w != "GONE"
        ]
        found = await self._jobs([progress.ids[i] for i in ended], progress.params)
        items: dict[str, ItemResult] = {}
        for index, name in enumerate(job.input_names):
            if progress.words[index] == "GONE":
                items[name] = wire.gone_item(name)
                continue
            raw = found.get(progress.ids[index])
            if raw is None:
                if index in ended:
                    items[name] = wire.gone_item(name)
                continue
            item = wire.item_from_wire(name, raw)
            if item is not None:
                items[name] = item
        return ResultSet(items=items)

    async def _jobs(
        self, job_ids: Sequence[str], params: Mapping[str, str]
    ) -> dict[str, dict[str, Any]]:
        """The provider's view of some classify jobs; a job it does not know is absent.

        Listed ``LIST_BATCH`` at a time; a job the list leaves out (a listing that lags
        behind, or an id the list filter does not match) is read on its own.
        """
        unique = list(dict.fromkeys(job_ids))
        found: dict[str, dict[str, Any]] = {}
        batches = [unique[i : i + LIST_BATCH] for i in range(0, len(unique), LIST_BATCH)]
        pages = await _bounded([partial(self._list, b, params) for b in batches])
        wanted = set(unique)
        for page in pages:
            for raw in page:
                ident = raw.get("id")
                if isinstance(ident, str) and ident in wanted:
                    found[ident] = raw
        missing = [i for i in unique if i not in found]
        singles = await _bounded([partial(self._get, j, params) for j in missing])
        for job_id, single in zip(missing, singles, strict=True):
            if single is not None:
                found[job_id] = single
        return found

    async def _list(self, job_ids: list[str], params: Mapping[str, str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            resp = await self._upstream.request(
                "GET",
                wire.CLASSIFY_PATH,
                operation="status",
                params=wire.list_params(job_ids, params, token, LIST_BATCH),
            )
            self._upstream.raise_for_status(resp)
            page, token = wire.page_from_wire(resp.json(), provider=self.name)
            out.extend(page)
            if token is None:
                return out
            if token in seen:
                break
            seen.add(token)
        raise ProviderBadResponse(self.name, "The provider's job list pages never end.")

    async def _get(self, job_id: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        resp = await self._upstream.request(
            "GET", wire.job_path(job_id), operation="status", params=params
        )
        if resp.status == 404:
            return None
        self._upstream.raise_for_status(resp)
        payload = resp.json()
        wire.word_from_wire(payload, provider=self.name)
        return dict(payload)

    # -- cancel -------------------------------------------------------------------------

    async def cancel(self, job: JobHandle) -> StatusReport:
        """Cancel every input's job still running; a job that ended meanwhile keeps its end."""
        progress = _Progress.of(job)
        running = [i for i, w in enumerate(progress.words) if w not in wire.TERMINAL_WORDS]
        answers = await _bounded(
            [partial(self._cancel_one, progress.ids[i], progress.params) for i in running]
        )
        for index, raw in zip(running, answers, strict=True):
            if raw is None:
                progress.lose(index)
            else:
                progress.learn(index, raw)
        return progress.report(changed=True)

    async def _cancel_one(self, job_id: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        resp = await self._upstream.request(
            "POST",
            wire.cancel_path(job_id),
            operation="cancel",
            params=params,
            # No body, labelled JSON as the official library labels it (tests/oracle/).
            headers=wire.EMPTY_JSON,
            # Cancelling twice is harmless: the second finds the job already cancelled.
            idempotent=True,
        )
        if resp.ok:
            payload = resp.json()
            wire.word_from_wire(payload, provider=self.name)
            return dict(payload)
        if resp.status == 404:
            return None
        if 400 <= resp.status < 500 and resp.status not in (401, 403, 408, 429):
            # Already ended (COMPLETED or FAILED cannot be cancelled): read how.
            return await self._get(job_id, params)
        self._upstream.raise_for_status(resp)
        raise AssertionError("raise_for_status returned for a failed answer")


async def _bounded(calls: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
    """Run the calls at most ``PARALLEL_CALLS`` at a time; results in call order.

    After a failure no further call starts, but the calls in flight finish: a create
    cut off mid-flight could leave a provider job nobody knows of. Then the first
    failure is raised.
    """
    gate = asyncio.Semaphore(PARALLEL_CALLS)
    failures: list[Exception] = []

    async def run(call: Callable[[], Awaitable[_T]]) -> _T | None:
        async with gate:
            if failures:
                return None
            try:
                return await call()
            except Exception as exc:
                failures.append(exc)
                raise

    answers = await asyncio.gather(*(run(call) for call in calls), return_exceptions=True)
    if failures:
        raise failures[0]
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return cast(list[_T], answers)

"""The provider port: what the gateway asks of every provider, and the types it gets back.

An adapter translates between the gateway's normalized job model and one provider's
wire API. It does no I/O of its own: it holds an ``Upstream`` (adapters/upstream.py)
that owns the session, timeouts, size caps and error mapping. Optional abilities
(cancel) are separate small Protocols, and ``Capabilities`` says truthfully what a
provider type can do, for ``GET /v1/providers`` and for request validation.

Results: the adapter returns the whole normalized result set of a job, walking the
provider's own pages (Modzy has none, LlamaCloud pages by token, Wood Wide by rows).
The gateway then pages the normalized items itself, so page tokens look the same for
every provider, a status filter works everywhere, and a finished job's items can be
cached and served in any page without asking the provider again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from adapters.outputs import Explanation, JobOutput, Output
from problems import FieldError, UnsupportedInput, ValidationFailed


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.PARTIALLY_SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
)


class ItemStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InputKind(StrEnum):
    TEXT = "text"
    DATA = "data"
    URL = "url"
    REF = "ref"
    RECORD = "record"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A job's or an item's failure, in the provider's words where it gave any."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: ``<provider>/<model_id>[@<version>]``."""

    provider: str
    model_id: str
    version: str | None = None

    def __str__(self) -> str:
        base = f"{self.provider}/{self.model_id}"
        return f"{base}@{self.version}" if self.version else base


@dataclass(frozen=True, slots=True)
class JobInput:
    """One input of a job; exactly one of the value fields matches ``kind``."""

    name: str
    kind: InputKind
    text: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    url: str | None = None
    ref: str | None = None
    record: Mapping[str, Any] | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A validated submit, as the adapter sees it."""

    model: ModelRef
    inputs: tuple[JobInput, ...]
    explain: bool = False
    #: ``options.provider`` of the request, still raw: the adapter validates it.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Unique to this submit and the same on every resend of it (made from the caller's
    #: Idempotency-Key when there is one, else the gateway's job id): for providers
    #: that take an idempotency key with each job they create. Empty: the adapter's own.
    submit_key: str = ""


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    succeeded: int = 0
    failed: int = 0
    pending: int = 0

    @classmethod
    def all_pending(cls, total: int) -> Counts:
        return cls(total=total, pending=total)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What the provider says of a job right now."""

    status: JobStatus
    #: The provider's own status word, shown to callers as ``upstream.status``.
    upstream_status: str
    #: None when the provider does not count items; the gateway then derives them.
    counts: Counts | None = None
    error: ErrorInfo | None = None
    #: Set by an adapter whose provider needs several steps per job (start an export,
    #: poll it, ...): its progress, which replaces the job's ``JobHandle.state`` and is
    #: stored with the job record in the same write, so the next check, on any replica
    #: and after any restart, takes the next step instead of starting over. None: the
    #: state stays as it is.
    state: Mapping[str, Any] | None = None
    #: False when the provider's status word is one the adapter does not know: the
    #: adapter reports the job as still running, and the gateway fails it if the word
    #: stays for ``unknown_status_grace_seconds`` (rather than leave it running forever).
    known: bool = True


@dataclass(frozen=True, slots=True)
class Submission:
    """What a successful submit leaves behind for later calls."""

    upstream_id: str
    #: Adapter-private, JSON-serializable data stored with the job record
    #: (e.g. file ids per input, the project an export must read).
    state: Mapping[str, Any] = field(default_factory=dict)
    #: The job's status when the submit answer already tells it.
    report: StatusReport | None = None


@dataclass(frozen=True, slots=True)
class JobHandle:
    """Everything an adapter gets back to address a job it submitted earlier."""

    upstream_id: str
    model: ModelRef
    input_names: tuple[str, ...]
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemResult:
    input: str
    status: ItemStatus
    output: Output | None = None
    explanation: Explanation | None = None
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_ms: int | None = None
    #: The provider's own output for the item, untouched (``include=raw``).
    raw: Any = None
    #: Answered from the gateway's item cache, not by the provider for this job.
    cached: bool = False


@dataclass(frozen=True, slots=True)
class ResultSet:
    """A job's results so far; inputs missing from ``items`` have no result yet."""

    items: Mapping[str, ItemResult]
    job_outputs: tuple[JobOutput, ...] = ()
    #: Set by the gateway when it read these results after the job finished: only
    #: such a set may answer for a finished job (a running job's partial set may not).
    final: bool = False


@dataclass(frozen=True, slots=True)
class Capabilities:
    input_kinds: frozenset[InputKind]
    output_types: frozenset[str]
    cancel: bool = False
    explain: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_kinds": sorted(self.input_kinds),
            "output_types": sorted(self.output_types),
            "cancel": self.cancel,
            "explain": self.explain,
        }


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """The parts of a provider's configuration an adapter may read."""

    name: str
    type: str
    #: Per-provider defaults for ``options.provider`` (e.g. an AnnoLab project).
    defaults: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ProviderAdapter(Protocol):
    """One inference provider, seen through the gateway's normalized job model."""

    name: str
    capabilities: Capabilities

    def validate(self, request: JobRequest) -> None:
        """Refuse, before any network call, what this provider cannot take.

        Raises:
            UnsupportedInput: an input kind or option the provider has no use for.
            ValidationFailed: ``options.provider`` missing or wrong, naming the field.
        """
        ...

    async def submit(self, request: JobRequest) -> Submission: ...

    async def status(self, job: JobHandle) -> StatusReport: ...

    async def results(self, job: JobHandle) -> ResultSet: ...


@runtime_checkable
class SupportsCancel(Protocol):
    async def cancel(self, job: JobHandle) -> StatusReport | None:
        """Ask the provider to stop the job; return its status if the answer tells it."""
        ...


# -- helpers every adapter's validate() uses ---------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def require_input_kinds(request: JobRequest, allowed: Iterable[InputKind]) -> None:
    """Raise ``UnsupportedInput`` naming every input whose kind is not allowed."""
    allowed_set = frozenset(allowed)
    bad = [
        FieldError(
            f"/inputs/{i}",
            f"input {item.name!r}: this provider cannot take '{item.kind}' inputs "
            f"(it takes {', '.join(sorted(allowed_set))})",
        )
        for i, item in enumerate(request.inputs)
        if item.kind not in allowed_set
    ]
    if bad:
        raise UnsupportedInput(bad[0].message, errors=bad)


def parse_options(
    model: type[_M], options: Mapping[str, Any], defaults: Mapping[str, Any] = {}
) -> _M:
    """Validate ``options.provider`` with the adapter's own model, naming each bad field."""
    merged = {**defaults, **options}
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        errors = [
            FieldError("/options/provider" + "".join(f"/{p}" for p in err["loc"]), err["msg"])
            for err in exc.errors()
        ]
        raise ValidationFailed(
            "options.provider is not valid for this provider.", errors=errors
        ) from None


def status_from_counts(counts: Counts) -> JobStatus:
    """The terminal status of a finished job, from how its items ended."""
    if counts.total > 0 and counts.failed >= counts.total:
        return JobStatus.FAILED
    if counts.failed > 0:
        return JobStatus.PARTIALLY_SUCCEEDED
    return JobStatus.SUCCEEDED

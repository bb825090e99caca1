"""The public API models: the contract of ../shared/API.md, as pydantic classes.

The same classes validate requests and render answers, and ``gateway.api.openapi``
builds ``/openapi.json`` from them, so the documented API cannot drift from the
served one. Requests forbid unknown fields (a typo is a 422, not silence).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from adapters.base import InputKind, ItemStatus, JobStatus
from adapters.outputs import Explanation, JobOutput, Output, OutputType


def rfc3339(value: datetime) -> str:
    """A timestamp as the API writes it: UTC, milliseconds, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Served as an RFC 3339 string; the plain serializer would document only ``string``.
Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

_INPUT_NAME = r"^[A-Za-z0-9._:-]{1,128}$"


def _flat_cell(value: Any) -> Any:
    # Records are table rows (Wood Wide uploads them as CSV): a nested object or list
    # has no column to go to, and silently flattening it would change the data.
    if isinstance(value, dict | list):
        raise ValueError("a record is a flat row: a cell is a string, number, boolean or null")
    return value


#: One cell of a ``record`` input. The validator runs first, so a nested value gets one
#: clear error at ``/inputs/N/record/<column>`` rather than one per union member.
Cell = Annotated[str | int | float | bool | None, BeforeValidator(_flat_cell)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class InputItem(_Request):
    """One input: a ``name`` and exactly one of ``text``, ``data``, ``url``, ``ref``, ``record``."""

    name: str = Field(pattern=_INPUT_NAME, description="Unique in the job.")
    text: str | None = Field(default=None, max_length=1_000_000)
    data: str | None = Field(default=None, description="Base64 bytes; needs content_type.")
    content_type: str | None = Field(default=None, pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=127)
    url: str | None = Field(default=None, max_length=4096, pattern=r"^https?://\S+$")
    ref: str | None = Field(default=None, min_length=1, max_length=256)
    record: dict[str, Cell] | None = None
    fields: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one_value(self) -> InputItem:
        given = [
            k for k in ("text", "data", "url", "ref", "record") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of text, data, url, ref, record"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.data is not None and self.content_type is None:
            raise ValueError("a data input needs content_type")
        if self.content_type is not None and self.data is None:
            raise ValueError("content_type goes with data")
        return self

    @field_validator("data")
    @classmethod
    def _base64(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("data must be standard base64") from None
        return v

    @property
    def kind(self) -> str:
        for k in ("text", "data", "url", "ref", "record"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated input without a value")


class JobOptions(_Request):
    explain: bool = False
    provider: dict[str, Any] = Field(
        default_factory=dict, description="Provider-specific options, validated by its adapter."
    )
    cache: Literal["use", "bypass", "off"] = Field(
        default="use",
        description="The item cache, on a model that has one: use it; bypass it (every input "
        "goes to the provider, and its fresh answers replace the entries); or off (neither).",
    )


class JobCreate(_Request):
    """The body of ``POST /v1/jobs``."""

    model: str = Field(min_length=1, max_length=300, description="Model id or alias.")
    inputs: list[InputItem] = Field(min_length=1)
    options: JobOptions = JobOptions()
    metadata: dict[str, Annotated[str, Field(max_length=512)]] = Field(
        default_factory=dict, max_length=16
    )
    webhook_url: str | None = Field(default=None, max_length=2048)

    @field_validator("inputs")
    @classmethod
    def _unique_names(cls, v: list[InputItem]) -> list[InputItem]:
        seen: set[str] = set()
        for item in v:
            if item.name in seen:
                raise ValueError(f"input name {item.name!r} is used twice")
            seen.add(item.name)
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not 1 <= len(k) <= 64:
                raise ValueError("metadata keys are 1-64 characters")
        return v


class ErrorBody(_Response):
    code: str
    message: str


class Counts(_Response):
    total: int
    succeeded: int
    failed: int
    pending: int
    #: Items a cancel stopped before they finished (they add up to ``total`` with the rest).
    cancelled: int = 0


class UpstreamRef(_Response):
    id: str | None
    status: str | None


class Notification(_Response):
    """Where a job's webhook stands (only on jobs submitted with ``webhook_url``)."""

    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    delivered_at: Timestamp | None


class Job(_Response):
    id: str
    model: str = Field(description="The model that runs the job (an alias's target).")
    provider: str
    alias: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only on jobs submitted under an alias: the alias; model and provider "
        "name the target that took the job (the first of its chain that would).",
    )
    status: JobStatus
    done: bool
    counts: Counts
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None
    error: ErrorBody | None
    upstream: UpstreamRef
    metadata: dict[str, str]
    notification: Notification | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only on jobs submitted with webhook_url.",
    )


class JobList(_Response):
    jobs: list[Job]
    next_page_token: str | None


class Item(_Response):
    input: str
    status: ItemStatus
    output: Output | None
    explanation: Explanation | None
    error: ErrorBody | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    elapsed_ms: int | None
    raw: Any = Field(
        default=None,
        description="Only with include=raw: the provider's own output, any JSON value.",
    )
    cached: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description="Only on an item answered from the item cache (a model with cache.items "
        "on): the answer an identical input got before; it was not sent to the provider.",
    )


class Results(_Response):
    job: Job
    items: list[Item]
    job_outputs: list[JobOutput]
    next_page_token: str | None
    total_size: int


class Capabilities(_Response):
    """What a provider can take and give."""

    input_kinds: list[InputKind] = Field(description="The input kinds it accepts.")
    output_types: list[OutputType] = Field(description="The output types its models give.")
    cancel: bool = Field(description="Whether its jobs can be cancelled.")
    explain: bool = Field(description="Whether it honours options.explain.")


class ProviderInfo(_Response):
    name: str
    type: Literal["modzy", "vody", "woodwide", "annolab", "llamacloud"]
    state: Literal["available", "backing_off", "circuit_open"]
    capabilities: Capabilities
    models: list[str]


class ProviderList(_Response):
    providers: list[ProviderInfo]


class ModelInfo(_Response):
    id: str
    provider: str
    aliases: list[str]
    output_type: OutputType
    #: What the configuration says the model does (``providers[].models[].description``).
    description: str | None = None


class AliasTargetInfo(_Response):
    model: str
    weight: float | None = Field(
        description="Share of first attempts in a split (null: tried in order)."
    )


class AliasInfo(_Response):
    name: str
    targets: list[AliasTargetInfo] = Field(
        description="Tried in this order (a weighted split picks the first by weight); "
        "a submit goes to the first whose provider takes it."
    )


class ModelList(_Response):
    models: list[ModelInfo]
    aliases: list[AliasInfo] = Field(
        default_factory=list, description="Every alias and the chain of models it names."
    )


class FieldProblem(_Response):
    pointer: str
    message: str


class Problem(_Response):
    """RFC 9457 problem details, with the gateway's ``code`` and ``request_id``."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    request_id: str
    errors: list[FieldProblem] | None = None


class Health(_Response):
    status: Literal["ok", "unavailable", "draining"]
    components: dict[str, str] = Field(default_factory=dict)
    #: With Redis: ``{"redis": {"persistence", "durable", "detail", "checked", "servers"}}``.
    details: dict[str, dict[str, Any]] = Field(default_factory=dict)

"""Configuration of the logs (format, level), of traces (off by default), and of what the
metrics may name: which tenants get a label of their own.

No tenant appears in a metric label unless listed here. ``tenant_labels`` names tenants
counted under their own name in ``gateway_tenant_requests_total``; the entry ``"*"``
also admits other tenants as this process first sees them, until ``max_tenant_labels``
tenants have a label. Everything else is counted under ``other``, so the metric never
holds more than ``max_tenant_labels + 1`` series per process.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: The label value of every tenant that has no label of its own.
OVERFLOW: Final = "other"
#: In ``tenant_labels``: admit any tenant, first seen first served, up to the cap.
ANY_TENANT: Final = "*"
_TENANT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Tenants with a label of their own; ``"*"`` admits any tenant up to the cap.
    tenant_labels: tuple[str, ...] = ()
    #: Most tenants with a label of their own (per process); the rest count as ``other``.
    max_tenant_labels: int = Field(default=50, ge=0, le=1000)

    @field_validator("tenant_labels")
    @classmethod
    def _names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name != ANY_TENANT and not _TENANT.match(name):
                raise ValueError(f"{name!r} is not a tenant name ([A-Za-z0-9._-], 1-64)")
            if name == OVERFLOW:
                raise ValueError(f"{OVERFLOW!r} is the label of unlisted tenants")
        if len(set(names)) != len(names):
            raise ValueError("a tenant is listed twice")
        return names

    @model_validator(mode="after")
    def _within_cap(self) -> MetricsSettings:
        listed = [n for n in self.tenant_labels if n != ANY_TENANT]
        if len(listed) > self.max_tenant_labels:
            raise ValueError(
                f"tenant_labels lists {len(listed)} tenants, more than max_tenant_labels "
                f"({self.max_tenant_labels})"
            )
        return self

    @property
    def listed(self) -> tuple[str, ...]:
        return tuple(n for n in self.tenant_labels if n != ANY_TENANT)

    @property
    def any_tenant(self) -> bool:
        return ANY_TENANT in self.tenant_labels


class LoggingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class TracingSettings(BaseModel):
    """OpenTelemetry traces (``gateway.observability.tracing``), off by default.

    A field left unset falls back to the standard ``OTEL_*`` variable the SDK reads
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
    ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_RESOURCE_ATTRIBUTES``); a field set here wins.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: The collector's OTLP/HTTP traces URL (``http://tempo:4318/v1/traces``).
    endpoint: str | None = None
    #: ``http/json`` ships with the gateway; ``http/protobuf`` and ``grpc`` need the
    #: ``tracing-protobuf`` extra installed (docs/tracing.md).
    protocol: Literal["http/json", "http/protobuf", "grpc"] = "http/json"
    #: Share of new traces kept; a caller's sampled ``traceparent`` is always followed.
    sample_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    service_name: str | None = None
    #: Exporter headers (``key=value,key2=value2``: a collector's API key). A credential:
    #: set it from the environment (``GATEWAY_TRACING__HEADERS``), never in a file.
    headers: SecretStr | None = Field(default=None, repr=False)

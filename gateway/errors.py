"""The gateway's error tree: every failure a caller can see, with its HTTP meaning.

Services and adapters raise these; exactly one middleware (``gateway.middleware.errors``)
renders them as RFC 9457 ``application/problem+json``. Nothing outside the HTTP edge
imports ``aiohttp.web`` or raises ``web.HTTP*``.

::

    GatewayError                      500 internal        (anything unexpected)
    ├── RequestRejected               400 invalid_request (the caller's fault)
    │   ├── InvalidJson               400 invalid_json
    │   ├── Unauthenticated           401 unauthenticated  + WWW-Authenticate: Bearer
    │   ├── Forbidden                 403 forbidden
    │   ├── NotFound                  404 not_found
    │   ├── Conflict                  409 conflict
    │   │   └── JobDone               409 job_done
    │   ├── PayloadTooLarge           413 payload_too_large
    │   ├── ValidationFailed          422 validation_failed  (+ errors[])
    │   │   ├── UnsupportedInput      422 unsupported_input
    │   │   ├── IdempotencyKeyReused  422 idempotency_key_reused
    │   │   └── CancelNotSupported    422 cancel_not_supported
    │   └── RateLimited               429 rate_limited       + Retry-After, RateLimit*
    │       ├── ConcurrencyLimited    429 concurrency_limited (too many unfinished jobs)
    │       └── QuotaExceeded         429 quota_exceeded     (the day's jobs are used up)
    ├── ProviderError                 (adapters/errors.py: the upstream's fault)
    └── DependencyError               503
        └── StoreUnavailable          503 store_unavailable

The tree is shallow on purpose: a handler that needs to tell two failures apart
can, and a middleware that renders them dispatches on ``isinstance`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one part of a request, located by a JSON pointer."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class GatewayError(Exception):
    """Base of every error the gateway renders; unknown subclasses render as 500."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal Server Error"
    #: The RFC 9457 problem type: ``about:blank`` where the status says it all.
    type: ClassVar[str] = "about:blank"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers: dict[str, str] = dict(headers or {})
        self.errors = tuple(errors)
        self.extra: dict[str, Any] = dict(extra or {})


class RequestRejected(GatewayError):
    status = 400
    code = "invalid_request"
    title = "Bad Request"


class InvalidJson(RequestRejected):
    status = 400
    code = "invalid_json"
    title = "Bad Request"


class Unauthenticated(RequestRejected):
    status = 401
    code = "unauthenticated"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "A valid API key or token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        )


class Forbidden(RequestRejected):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(RequestRejected):
    status = 404
    code = "not_found"
    title = "Not Found"


class Conflict(RequestRejected):
    status = 409
    code = "conflict"
    title = "Conflict"


class JobDone(Conflict):
    code = "job_done"


class PayloadTooLarge(RequestRejected):
    status = 413
    code = "payload_too_large"
    title = "Content Too Large"


class ValidationFailed(RequestRejected):
    status = 422
    code = "validation_failed"
    title = "Unprocessable Content"


class UnsupportedInput(ValidationFailed):
    code = "unsupported_input"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


class CancelNotSupported(ValidationFailed):
    code = "cancel_not_supported"


class RateLimited(RequestRejected):
    status = 429
    code = "rate_limited"
    title = "Too Many Requests"


class ConcurrencyLimited(RateLimited):
    code = "concurrency_limited"
    # A problem type of its own: a client backs off differently from a rate limit
    # (wait for a job to finish rather than for time to pass).
    type = "tag:inference-gateway,2026:problem:concurrency-limited"


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    type = "tag:inference-gateway,2026:problem:quota-exceeded"


class DependencyError(GatewayError):
    status = 503
    code = "dependency_unavailable"
    title = "Service Unavailable"


class StoreUnavailable(DependencyError):
    code = "store_unavailable"

"""The gateway's error tree: every failure a caller can see, with its HTTP meaning.

Services and adapters raise these; exactly one middleware (``gateway.http.middleware.errors``)
renders them as RFC 9457 ``application/problem+json``. Nothing outside the HTTP edge
imports ``aiohttp.web`` or raises ``web.HTTP*``.

::

    GatewayError *                    500 internal        (anything unexpected)
    ├── RequestRejected *             400 invalid_request (the caller's fault)
    │   ├── InvalidJson               400 invalid_json
    │   ├── Unauthenticated           401 unauthenticated  + WWW-Authenticate: Bearer
    │   ├── Forbidden                 403 forbidden
    │   ├── NotFound                  404 not_found
    │   ├── Conflict                  409 conflict
    │   │   └── JobDone               409 job_done
    │   ├── PayloadTooLarge           413 payload_too_large
    │   ├── ValidationFailed *        422 validation_failed  (+ errors[] of FieldError *)
    │   │   ├── UnsupportedInput *    422 unsupported_input
    │   │   ├── IdempotencyKeyReused  422 idempotency_key_reused
    │   │   └── CancelNotSupported    422 cancel_not_supported
    │   └── RateLimited               429 rate_limited       + Retry-After, RateLimit*
    │       ├── ConcurrencyLimited    429 concurrency_limited (too many unfinished jobs)
    │       └── QuotaExceeded         429 quota_exceeded     (the day's jobs are used up)
    ├── ProviderError                 (adapters/errors.py: the upstream's fault)
    └── DependencyError               503
        └── StoreUnavailable          503 store_unavailable

The classes marked * live in ``problems`` (the package the adapters share with the
gateway, so they need nothing of it) and are re-exported here: gateway code imports
every error from this module.

The tree is shallow on purpose: a handler that needs to tell two failures apart
can, and a middleware that renders them dispatches on ``isinstance`` alone.
"""

from __future__ import annotations

from problems import FieldError, GatewayError, RequestRejected, UnsupportedInput, ValidationFailed

__all__ = [
    "CancelNotSupported",
    "ConcurrencyLimited",
    "Conflict",
    "DependencyError",
    "FieldError",
    "Forbidden",
    "GatewayError",
    "IdempotencyKeyReused",
    "InvalidJson",
    "JobDone",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "RequestRejected",
    "StoreUnavailable",
    "Unauthenticated",
    "UnsupportedInput",
    "ValidationFailed",
]


class InvalidJson(RequestRejected):
    status = 400
    code = "invalid_json"
    title = "Bad Request"


class Unauthenticated(RequestRejected):
    status = 401
    code = "unauthenticated"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, *, reason: str = "unknown") -> None:
        super().__init__(
            detail or "A valid API key or token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        )
        #: Why, for the log only (``missing``, ``unknown``, ``revoked``, ``malformed``,
        #: ``expired``, ...): every caller gets the same answer whatever the reason.
        self.reason = reason


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

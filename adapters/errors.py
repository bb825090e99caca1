"""Errors that are the upstream provider's fault, not the caller's.

They inherit ``GatewayError`` so the one error middleware renders them::

    ProviderError                 502 provider_error
    ├── ProviderRejected          422 provider_rejected   (the provider refused the input)
    ├── ProviderBadResponse       502 provider_error      (5xx, bad body, our credential refused)
    │   └── UnreadableSubmit      502 provider_error      (a 2xx submit answer we cannot read)
    ├── ProviderUnavailable       503 provider_unavailable (+ Retry-After)
    ├── ProviderTimeout           504 provider_timeout
    └── UpstreamJobNotFound       404 not_found           (the provider no longer knows the job)

Messages never carry a credential or the provider's address: ``detail`` is written
for the caller, and the provider's own words are included only where they describe
the caller's input (``ProviderRejected``, a failed item).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from problems import FieldError, GatewayError


class ProviderError(GatewayError):
    status = 502
    code = "provider_error"
    title = "Bad Gateway"

    def __init__(
        self,
        provider: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(detail, headers=headers, errors=errors)
        self.provider = provider


class ProviderRejected(ProviderError):
    status = 422
    code = "provider_rejected"
    title = "Unprocessable Content"


class ProviderBadResponse(ProviderError):
    pass


class UnreadableSubmit(ProviderBadResponse):
    """The provider said yes to a submit (2xx) in words the adapter cannot read.

    Unlike any other 502 of a submit, the provider may have started the job and may
    charge for it: the caller is told so, and the gateway logs and counts it with
    whatever job id the answer seems to hold (``maybe_job_id``).
    """

    def __init__(self, provider: str, maybe_job_id: str | None = None) -> None:
        named = f" (its answer names job {maybe_job_id!r})" if maybe_job_id else ""
        super().__init__(
            provider,
            "The provider accepted the submit but its answer could not be read"
            f"{named}: it may have started the job, and may charge for it. Check with the "
            "provider before submitting again.",
        )
        self.maybe_job_id = maybe_job_id


class ProviderUnavailable(ProviderError):
    status = 503
    code = "provider_unavailable"
    title = "Service Unavailable"


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"
    title = "Gateway Timeout"


class UpstreamJobNotFound(ProviderError):
    status = 404
    code = "not_found"
    title = "Not Found"

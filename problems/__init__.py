"""The error types the gateway and the adapters share, apart from both so neither needs the other.

An adapter refuses an input it cannot send (``UnsupportedInput``) or a provider option
that does not validate (``ValidationFailed``, with one ``FieldError`` per problem), and
its provider failures (``adapters.errors.ProviderError``) build on ``GatewayError``;
the gateway renders all of them. Keeping these few classes here lets ``adapters/`` be
read, tested and reused without the HTTP service: this package imports nothing of
either. The whole tree, with every status and code, is drawn in ``gateway/errors.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "FieldError",
    "GatewayError",
    "RequestRejected",
    "UnsupportedInput",
    "ValidationFailed",
]


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


class ValidationFailed(RequestRejected):
    status = 422
    code = "validation_failed"
    title = "Unprocessable Content"


class UnsupportedInput(ValidationFailed):
    code = "unsupported_input"

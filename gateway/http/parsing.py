"""Reading requests: JSON bodies into models, query parameters, ``Prefer: wait``."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.errors import FieldError, InvalidJson, PayloadTooLarge, ValidationFailed

M = TypeVar("M", bound=BaseModel)

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)

#: Deeper bodies are refused: no request of the contract nests past a dozen levels,
#: and every later step (validation, fingerprints, Redis codecs) recurses on depth.
MAX_JSON_DEPTH = 64


def _no_constant(name: str) -> Any:
    # NaN and Infinity are JavaScript, not JSON (RFC 8259 §6); Python accepts them.
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: a JSON number Python can only read as inf
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing numbers, at most ``MAX_JSON_DEPTH`` deep.

    Raises:
        InvalidJson: whatever is wrong with it.
    """
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        # The C decoder recurses per nesting level; ~10 KB of "[" exhausts the stack.
        raise InvalidJson(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("The request body is not valid JSON.") from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise InvalidJson(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_model(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: 413 when too large, 400 when not JSON, 422 when invalid."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("The request body is larger than this gateway accepts.") from None
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidJson("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = [
        FieldError(
            "".join(f"/{p}" for p in err["loc"] if not _is_union_tag(p)),
            _message(err),
        )
        for err in exc.errors()
    ]
    first = errors[0] if errors else None
    detail = f"{first.pointer or '/'}: {first.message}" if first else "The request is not valid."
    return ValidationFailed(detail, errors=errors)


def _is_union_tag(part: Any) -> bool:
    # pydantic puts validator names like "function-after[...]" into locations.
    return isinstance(part, str) and "[" in part


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return msg.removeprefix("Value error, ")


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter, clamped to ``[lo, hi]``; not a number is a 422."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(
            f"Query parameter {name} must be an integer.",
            errors=[FieldError(f"/{name}", "must be an integer")],
        ) from None
    return max(lo, min(hi, value))


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ValidationFailed(
            f"Query parameter {name} must be one of {', '.join(choices)}.",
            errors=[FieldError(f"/{name}", f"must be one of {', '.join(choices)}")],
        )
    return raw


def prefer_wait(request: web.Request, maximum: float) -> float | None:
    """Seconds asked for by ``Prefer: wait=N`` (RFC 7240), capped at ``maximum``."""
    header = request.headers.get("Prefer")
    if not header:
        return None
    m = _PREFER_WAIT.search(header)
    if m is None:
        return None
    return min(float(m.group(1)), maximum)

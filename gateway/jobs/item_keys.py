"""The item cache's keys: everything that decides a model's answer to one input.

Two inputs share an entry only if the same provider account ran the same model and
version with the same options (``options.provider``, ``explain``) on the same content:
the text, the bytes and their content type, the URL, the ref or the record, and the
input's ``fields`` (a multi-input model's other inputs). The input's name is not part of
it. The scope comes first: a tenant's name (by default), or nothing for a model the
operator made ``global``, so one tenant's entries are never another's. Keys are
SHA-256 digests: an entry's key reveals nothing of its input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from adapters.base import JobInput, ModelRef


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def content_digest(item: JobInput) -> str:
    """The input's content and fields, whatever its name."""
    h = hashlib.sha256()
    h.update(item.kind.value.encode() + b"\0")
    if item.data is not None:
        h.update((item.content_type or "").encode() + b"\0")
        h.update(item.data)
    else:
        value = getattr(item, item.kind.value)
        h.update(_canonical(value))
    h.update(b"\0")
    h.update(_canonical(dict(item.fields)))
    return h.hexdigest()


def item_key(
    *,
    scope: str,
    account: str,
    model: ModelRef,
    options: Mapping[str, Any],
    explain: bool,
    item: JobInput,
) -> str:
    """The entry's key. ``scope``: the tenant, or ``""`` for a global model."""
    material = [
        scope,
        account,
        model.model_id,
        model.version or "",
        dict(options),
        explain,
        content_digest(item),
    ]
    return hashlib.sha256(_canonical(material)).hexdigest()

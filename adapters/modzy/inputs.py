"""Which model input each value goes to: the model version's own input names.

A Modzy job carries, per input item, ``{<model input name>: value}``; a name the model
does not have fails that item at the provider, after it was paid for. The names are
in the model version's metadata, ``GET /api/models/{id}/versions/{version}`` → ``inputs:
[{"name", "acceptedMediaTypes", "maximumSize", "description"}]`` (modzy-sdk 0.11.6
``models.py`` ``get_version``; its sample reads ``modelVersion.inputs[].name`` before it
submits). The adapter reads them once per model version and resolves each gateway input:

* the input's own value (``text`` or ``data``) goes to ``options.provider.input_name``
  when given, else to the one model input its ``fields`` leave out;
* ``fields`` give the other inputs of a multi-input model, by model input name
  (``{"config.json": {"labels": [...]}}``): a string is sent as it is, any other JSON
  value as its JSON text; in a ``data`` job each becomes a data URI (``text/plain`` or
  ``application/json``);
* every input the model declares must be given, and none it lacks ([inferred]: the
  provider would fail the item), else the submit is refused before it is sent.

Without usable metadata (none declared, or a key that may not read it) the names fall
back to the old defaults (``input.txt`` for text, ``image`` for data) [inferred].
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import InputKind, JobInput
from problems import FieldError, ValidationFailed

#: The model input name when neither metadata nor options name one.
DEFAULT_INPUT_NAMES: Mapping[str, str] = {"text": "input.txt", "embedded": "image"}


def input_names_from_wire(payload: Any) -> tuple[str, ...] | None:
    """The ``inputs[].name`` of a model version's details; None when it declares none."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list):
        return None
    names = [i.get("name") for i in inputs if isinstance(i, dict)]
    usable = tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))
    return usable or None


def data_uri(data: bytes, content_type: str | None) -> str:
    """An ``embedded`` source value: ``data:<mime>;base64,<bytes>``."""
    mime = (content_type or "application/octet-stream").replace(" ", "")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _own_value(item: JobInput) -> str:
    if item.kind is InputKind.TEXT:
        return item.text or ""
    return data_uri(item.data or b"", item.content_type)


def _field_value(value: Any, embedded: bool) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if not embedded:
        return text
    return data_uri(text.encode(), "text/plain" if isinstance(value, str) else "application/json")


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _primary(
    i: int,
    item: JobInput,
    model_inputs: tuple[str, ...],
    errors: list[FieldError],
) -> str | None:
    """The model input the item's own value goes to, when no option names it."""
    left = [n for n in model_inputs if n not in item.fields]
    if len(left) == 1:
        return left[0]
    if not left:
        errors.append(
            FieldError(
                f"/inputs/{i}/fields",
                f"input {item.name!r}: fields give every model input "
                f"({_listed(model_inputs)}), leaving none for the input's own value",
            )
        )
    else:
        errors.append(
            FieldError(
                f"/inputs/{i}/fields",
                f"input {item.name!r}: the model takes {_listed(model_inputs)}; give all but "
                "the one for the input's own value in fields (or name that one in "
                "options.provider.input_name)",
            )
        )
    return None


def _item_sources(
    i: int,
    item: JobInput,
    primary: str,
    model_inputs: tuple[str, ...] | None,
    embedded: bool,
    errors: list[FieldError],
) -> dict[str, str]:
    sources = {primary: _own_value(item)}
    for key, value in item.fields.items():
        pointer = f"/inputs/{i}/fields/{key}"
        if key == primary:
            errors.append(FieldError(pointer, f"{key!r} is the input's own value already"))
        elif value is None:
            errors.append(FieldError(pointer, "a model input's value cannot be null"))
        else:
            sources[key] = _field_value(value, embedded)
    missing = [n for n in model_inputs or () if n not in sources]
    if missing and not any(e.pointer.startswith(f"/inputs/{i}/") for e in errors):
        errors.append(
            FieldError(
                f"/inputs/{i}/fields",
                f"input {item.name!r}: the model's input(s) {_listed(missing)} are missing",
            )
        )
    return sources


def sources(
    inputs: Sequence[JobInput],
    wire_type: str,
    model_inputs: tuple[str, ...] | None,
    input_name: str | None,
) -> dict[str, dict[str, str]]:
    """``input.sources`` of a job: each item's values by model input name.

    Raises ValidationFailed naming every input (and option) that cannot be placed.
    """
    if input_name is not None and model_inputs is not None and input_name not in model_inputs:
        msg = f"the model has no input {input_name!r} (it takes {_listed(model_inputs)})"
        raise ValidationFailed(msg, errors=[FieldError("/options/provider/input_name", msg)])
    errors: list[FieldError] = []
    out: dict[str, dict[str, str]] = {}
    embedded = wire_type == "embedded"
    for i, item in enumerate(inputs):
        unknown = [k for k in item.fields if model_inputs is not None and k not in model_inputs]
        if unknown and model_inputs is not None:
            errors.extend(
                FieldError(
                    f"/inputs/{i}/fields/{key}",
                    f"the model has no input {key!r} (it takes {_listed(model_inputs)})",
                )
                for key in unknown
            )
            continue
        if input_name is not None:
            primary: str | None = input_name
        elif model_inputs is None:
            primary = DEFAULT_INPUT_NAMES[wire_type]
        else:
            primary = _primary(i, item, model_inputs, errors)
        if primary is not None:
            out[item.name] = _item_sources(i, item, primary, model_inputs, embedded, errors)
    if errors:
        raise ValidationFailed(errors[0].message, errors=errors)
    return out

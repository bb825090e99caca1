"""Configuration problems a person can act on: the YAML line, and what to write instead.

pydantic names a problem by its ``loc`` path (``('redis', 'soket_timeout')``) and
says it in its own words ("Extra inputs are not permitted"). Here each path is walked
down the YAML node tree yaml composed (every node keeps its start mark) to the line it
came from, an unknown key gets the nearest field name, and an inline credential gets
the two forms a credential may take.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

_CREDENTIAL_FORMS = (
    "a credential is never written inline: give {env: VARIABLE} (read from that "
    "environment variable) or {file: path} (read from that file, relative to this "
    "configuration's folder)"
)


def line_of(root: yaml.Node | None, loc: list[str]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` found in the file (a key's own
    line for a mapping entry, so a wrong or unknown key points at itself)."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == part
                ),
                None,
            )
            if entry is None:
                break
            line = entry[0].start_mark.line + 1
            node = entry[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[([^\]]+)\])?")


def line_of_path(root: yaml.Node | None, path: str) -> int | None:
    """The line of a problem named by a checks path (``providers[modzy-eu].credential.env``,
    ``api_keys[svc].models[0]``): a bracketed name picks the list item with that
    ``name`` or ``id``, a bracketed number the item at that index."""
    node = root
    line = None
    for m in _SEGMENT.finditer(path):
        key, pick = m.group(1), m.group(2)
        found = _entry(node, key)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
        if pick is None:
            continue
        item = _item(node, pick)
        if item is None:
            break
        line, node = item.start_mark.line + 1, item
    return line


def _entry(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _item(node: yaml.Node, pick: str) -> yaml.Node | None:
    if not isinstance(node, yaml.SequenceNode):
        return None
    if pick.isdigit() and int(pick) < len(node.value):
        found: yaml.Node = node.value[int(pick)]
        return found
    items: list[yaml.Node] = node.value
    for item in items:
        for label in ("name", "id"):
            entry = _entry(item, label)
            if (
                entry is not None
                and isinstance(entry[1], yaml.ScalarNode)
                and entry[1].value == pick
            ):
                return item
    return None


def explain(err: ErrorDetails, root_model: type[BaseModel]) -> str:
    """pydantic's message for one error, said in the configuration's terms."""
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "extra_forbidden" and loc:
        unknown = loc[-1]
        known = fields_at(root_model, loc[:-1])
        close = difflib.get_close_matches(unknown, sorted(known or ()), n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        return f"unknown field {unknown!r}{hint}"
    if loc and loc[-1] == "credential" and err["type"] in ("model_type", "model_attributes_type"):
        return _CREDENTIAL_FORMS
    if loc and loc[-1] == "base_url" and err["type"] == "string_pattern_mismatch":
        return "not an http(s) URL with a host, e.g. https://api.example.com/v1"
    return err["msg"]


def fields_at(model: type[BaseModel], loc: list[str]) -> set[str] | None:
    """The field names of the model at ``loc`` below ``model`` (None if it is not one)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
            continue
        origin = get_origin(current)
        args = get_args(current)
        if origin in (list, tuple, set, frozenset) and args:
            current = args[0]  # part is the index
        elif origin is dict and len(args) == 2:
            current = args[1]  # part is the key
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return set(current.model_fields)
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` (and ``Optional[X]``) → ``X``, where exactly one member is a model."""
    if get_origin(annotation) in (Union, types.UnionType):
        models = [
            a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if len(models) == 1:
            return models[0]
    return annotation

"""``components/schemas`` of ``/openapi.json``: the models' JSON Schemas, made generator-friendly.

Pydantic writes what the models validate and serialize; three things it cannot say the
way client generators read them are adjusted here, from the models' own schemas so
nothing is written twice:

* an input is a ``name`` and exactly one of ``text``, ``data`` (+ ``content_type``),
  ``url``, ``ref``, ``record``: a model validator in ``InputItem``, which JSON Schema
  can only say as a ``oneOf`` of one variant per kind;
* a ``default`` on a request field makes openapi-typescript type the field as
  required (it reads a default as "always there", which holds for answers only), so a
  body without it no longer type-checks: request defaults move into the description,
  and ``default: null`` goes everywhere (an absent field already means null);
* ``title`` on every property is generator noise (openapi-python-client names nested
  classes after it).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api import models

#: Each input kind, the property that carries it, and the ones that must go with it.
_KINDS = {
    "TextInput": ("text", ()),
    "DataInput": ("data", ("content_type",)),
    "UrlInput": ("url", ()),
    "RefInput": ("ref", ()),
    "RecordInput": ("record", ()),
}

_REQUESTS = (models.JobCreate,)
#: The schemas of request bodies (``_REQUESTS`` and what they nest).
_REQUEST_SCHEMAS = ("JobCreate", "JobOptions", "InputItem")
_RESPONSES: tuple[type[BaseModel], ...] = (
    models.Job,
    models.JobList,
    models.Results,
    models.Item,
    models.ProviderList,
    models.ModelList,
    models.Problem,
    models.Health,
)


def component_schemas() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in _REQUESTS] + [(m, "serialization") for m in _RESPONSES],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    for schema in schemas.values():
        _tidy(schema)
    for name in _REQUEST_SCHEMAS:
        _describe_defaults(schemas[name])
    schemas.update(_input_variants(schemas.pop("InputItem")))
    return schemas


def _tidy(node: Any) -> None:
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                prop.pop("title", None)
                if "default" in prop and prop["default"] is None:
                    del prop["default"]
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)


def _describe_defaults(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        if "default" in prop:
            default = json.dumps(prop.pop("default"))
            lead = prop.get("description", "").rstrip(".")
            prop["description"] = (
                f"{lead}. Default: `{default}`." if lead else f"Default: `{default}`."
            )


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` -> ``X``, keeping the property's description."""
    variants = [v for v in prop.get("anyOf", [prop]) if v != {"type": "null"}]
    out = dict(variants[0]) if len(variants) == 1 else {"anyOf": variants}
    if "description" in prop:
        out["description"] = prop["description"]
    return out


def _input_variants(item: dict[str, Any]) -> dict[str, Any]:
    properties = item["properties"]
    out: dict[str, Any] = {
        "InputItem": {
            "description": item["description"],
            "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in _KINDS],
        }
    }
    for name, (kind, companions) in _KINDS.items():
        own = (kind, *companions)
        props: dict[str, Any] = {"name": copy.deepcopy(properties["name"])}
        props.update({k: _non_null(properties[k]) for k in own})
        # The other kinds are left out, and additionalProperties refuses them. Typed as
        # null (the gateway reads a null as absent) they make Redocly see overlapping
        # variants; as ``false`` openapi-python-client cannot read them; as ``not: {}``
        # they only add untyped attributes to every generated class.
        props["fields"] = copy.deepcopy(properties["fields"])
        props["fields"]["description"] = "Extra per-item attributes a provider needs."
        out[name] = {
            "title": name,
            "description": f"An input given as `{kind}`.",
            "type": "object",
            "properties": props,
            "required": ["name", *own],
            "additionalProperties": False,
        }
    return out

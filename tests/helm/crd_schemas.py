"""Strict JSON schemas for the two Prometheus Operator kinds the chart renders.

kubernetes-validate knows only built-in kinds, so ServiceMonitor and PrometheusRule are checked
against these: the subset of the monitoring.coreos.com/v1 CRDs' OpenAPI schemas that the chart
uses (field names, types, the Duration pattern), closed to any other field so a typo fails.
"""

from __future__ import annotations

from typing import Any

# monitoring.coreos.com/v1 Duration, as in the CRDs.
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
    r"(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


METADATA = _closed(
    {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    ("name",),
)


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _closed(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )


SERVICE_MONITOR = _resource(
    "ServiceMonitor",
    _closed(
        {
            "selector": _closed({"matchLabels": STRING_MAP}, ("matchLabels",)),
            "namespaceSelector": _closed(
                {"matchNames": {"type": "array", "items": {"type": "string"}}}
            ),
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                    },
                    ("port",),
                ),
            },
        },
        ("selector", "endpoints"),
    ),
)

_RULE = {
    "type": "object",
    "properties": {
        "alert": {"type": "string", "minLength": 1},
        "record": {"type": "string", "minLength": 1},
        "expr": {"type": "string", "minLength": 1},
        "for": DURATION,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "additionalProperties": False,
}

PROMETHEUS_RULE = _resource(
    "PrometheusRule",
    _closed(
        {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "interval": DURATION,
                        "rules": {"type": "array", "minItems": 1, "items": _RULE},
                    },
                    ("name", "rules"),
                ),
            }
        },
        ("groups",),
    ),
)

BY_KIND = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}

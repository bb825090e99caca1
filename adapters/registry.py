"""The provider types this build knows, by name (``adapters/<type>/PROVIDER_TYPE``)."""

from __future__ import annotations

import importlib

from adapters.provider_type import ProviderType

KNOWN_TYPES = ("modzy", "vody", "woodwide", "annolab", "llamacloud")


def provider_type(name: str) -> ProviderType:
    """The ``ProviderType`` of ``adapters.<name>``; KeyError for an unknown type."""
    if name not in KNOWN_TYPES:
        raise KeyError(name)
    module = importlib.import_module(f"adapters.{name}")
    found: ProviderType = module.PROVIDER_TYPE
    return found


def available_types() -> list[ProviderType]:
    """Every provider type whose package is present in this build."""
    out = []
    for name in KNOWN_TYPES:
        try:
            out.append(provider_type(name))
        except ModuleNotFoundError:
            continue
    return out

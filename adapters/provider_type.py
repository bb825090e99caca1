"""What each provider package exports: how to build its adapter and its simulator.

``adapters/<type>/__init__.py`` defines ``PROVIDER_TYPE = ProviderType(...)``;
``adapters/registry.py`` collects them. The composition root builds one ``Upstream``
per configured provider (with ``auth_headers(credential)``), then the adapter over it;
``gateway simulate`` and ``gateway demo`` mount every ``create_simulator()`` under
``/<type>/``; the shared adapter contract suite drives every simulator through its
adapter with the ``ContractExamples`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.base import Capabilities, JobInput, ProviderAdapter, ProviderConfig
from adapters.simulation import SimulatorControl
from adapters.upstream import Upstream


@dataclass(frozen=True, slots=True)
class ContractExamples:
    """Inputs the shared adapter contract suite sends to this provider's simulator."""

    model_id: str
    version: str | None
    #: At least three inputs that all succeed (more than one provider page where the
    #: provider pages its results, with ``fast_simulator``'s page size).
    good_inputs: tuple[JobInput, ...]
    #: Inputs of which some, not all, fail in the simulator (partial success).
    partly_failing_inputs: tuple[JobInput, ...]
    #: Valid ``options.provider`` for the good request.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: An ``options.provider`` this adapter must refuse with 422, and the JSON
    #: pointer the error must name; None where the provider takes no options.
    bad_options: Mapping[str, Any] | None = None
    bad_option_pointer: str | None = None
    #: An input kind this provider cannot take, to check ``unsupported_input``.
    unsupported_input: JobInput | None = None
    #: Provider defaults (``ProviderConfig.defaults``) the examples rely on.
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """One cheap, read-only, authenticated call that tells whether a credential and base
    URL work (``gateway check-provider``): it creates nothing and costs no inference."""

    #: Path under the provider's base URL, query included.
    path: str
    #: Answers that mean "credential accepted". A provider with no list endpoint is asked
    #: for an id that cannot exist: a 404 then proves the key passed authentication.
    ok_statuses: frozenset[int] = frozenset({200})
    #: What an accepted answer shows, when it is not plain (a 404 that means OK).
    note: str = ""


@dataclass(frozen=True, slots=True)
class ProviderType:
    name: str
    capabilities: Capabilities
    #: The provider's auth header(s) for a credential.
    auth_headers: Callable[[str], dict[str, str]]
    create_adapter: Callable[[ProviderConfig, Upstream], ProviderAdapter]
    #: A simulator with demo-like timing; ``control`` may be shared with a test.
    create_simulator: Callable[[SimulatorControl | None], web.Application]
    #: A simulator whose jobs finish within about a second and whose result pages
    #: are small, for tests.
    fast_simulator: Callable[[SimulatorControl | None], web.Application]
    #: The credential every simulator of this type accepts.
    simulator_credential: str
    #: Path under the simulator root where the real provider's base URL would be
    #: (``/api`` for Modzy, empty for the others).
    base_path: str
    examples: ContractExamples
    #: How ``gateway check-provider`` tries a credential.
    credential_check: CredentialCheck = CredentialCheck("/")

"""AnnoLab: model inferences over documents the provider holds (PROVIDERS.md §4)."""

from __future__ import annotations

from adapters.annolab.adapter import CAPABILITIES, AnnoLabAdapter
from adapters.annolab.simulator import (
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    fast_simulator,
)
from adapters.annolab.wire import AnnoLabOptions, auth_headers
from adapters.base import InputKind, JobInput
from adapters.provider_type import ContractExamples, CredentialCheck, ProviderType


def _source(name: str, source_id: int) -> JobInput:
    return JobInput(name=name, kind=InputKind.REF, ref=str(source_id))


EXAMPLES = ContractExamples(
    # "NER Contracts" by id: a gateway model id cannot hold the name's space.
    model_id="8",
    version=None,
    good_inputs=(
        _source("contract-3240", 3240),
        _source("contract-4414", 4414),
        _source("contract-5853", 5853),
    ),
    # Source ids ending in 13 fail in the simulator.
    partly_failing_inputs=(
        _source("contract-4024", 4024),
        _source("bad-fail-1", 4413),
        _source("contract-5853", 5853),
    ),
    options={"output_layer": "Model Predictions"},
    bad_options={"project": ["Sample Project"]},
    bad_option_pointer="/options/provider/project",
    unsupported_input=JobInput(name="note", kind=InputKind.TEXT, text="a contract"),
    # project and group come from here; output_layer from the options.
    defaults={"project": "Sample Project", "group": "Company Name"},
)

PROVIDER_TYPE = ProviderType(
    name="annolab",
    capabilities=CAPABILITIES,
    auth_headers=auth_headers,
    create_adapter=AnnoLabAdapter,
    create_simulator=create_simulator,
    fast_simulator=fast_simulator,
    simulator_credential=SIMULATOR_KEY,
    base_path="",
    examples=EXAMPLES,
    credential_check=CredentialCheck("/v1/api-key/info"),
)

__all__ = [
    "CAPABILITIES",
    "EXAMPLES",
    "PROVIDER_TYPE",
    "SIMULATOR_KEY",
    "AnnoLabAdapter",
    "AnnoLabOptions",
    "SimSettings",
    "create_simulator",
    "fast_simulator",
]

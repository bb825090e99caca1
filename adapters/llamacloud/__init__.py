"""LlamaCloud's classify API (v2): upload files, classify each by rules in its own job."""

from __future__ import annotations

from adapters.base import InputKind, JobInput, ProviderConfig
from adapters.llamacloud.adapter import CAPABILITIES, LlamaCloudAdapter
from adapters.llamacloud.simulator import (
    SIM_STATE,
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    fast_simulator,
)
from adapters.llamacloud.wire import MODEL_ID, LlamaCloudOptions, auth_headers
from adapters.provider_type import ContractExamples, CredentialCheck, ProviderType
from adapters.upstream import Upstream

__all__ = [
    "CAPABILITIES",
    "EXAMPLE_RULES",
    "MODEL_ID",
    "PROVIDER_TYPE",
    "SIMULATOR_KEY",
    "SIM_STATE",
    "LlamaCloudAdapter",
    "LlamaCloudOptions",
    "SimSettings",
    "auth_headers",
    "create_simulator",
    "fast_simulator",
]

EXAMPLE_RULES = [
    {"type": "invoice", "description": "contains an invoice number, line items and amount due"},
    {"type": "receipt", "description": "a store receipt with items paid and change given"},
    {"type": "contract", "description": "an agreement between parties with terms and signatures"},
]


def _text(name: str, text: str) -> JobInput:
    return JobInput(name=name, kind=InputKind.DATA, data=text.encode(), content_type="text/plain")


def _create_adapter(config: ProviderConfig, upstream: Upstream) -> LlamaCloudAdapter:
    return LlamaCloudAdapter(config, upstream)


PROVIDER_TYPE = ProviderType(
    name="llamacloud",
    capabilities=CAPABILITIES,
    auth_headers=auth_headers,
    create_adapter=_create_adapter,
    create_simulator=create_simulator,
    fast_simulator=fast_simulator,
    simulator_credential=SIMULATOR_KEY,
    base_path="",
    examples=ContractExamples(
        model_id=MODEL_ID,
        version=None,
        good_inputs=(
            _text("invoice-7", "Invoice number 7781. Line items: 2 chairs. Amount due: $90."),
            _text("receipt-3", "Store receipt. Items paid: coffee, bagel. Change given: $1."),
            _text("contract-1", "Agreement between the parties; terms apply; signatures below."),
            JobInput(name="sample", kind=InputKind.REF, ref="dfl-sample-invoice"),
        ),
        partly_failing_inputs=(
            _text("invoice-8", "Invoice number 8812 with line items and the amount due."),
            _text("scan-fail-1", "Blurry scan, unreadable."),
            _text("receipt-4", "Receipt: items paid in cash, change given."),
        ),
        options={"rules": EXAMPLE_RULES, "mode": "FAST"},
        bad_options={"mode": "FAST"},
        bad_option_pointer="/options/provider/rules",
        unsupported_input=JobInput(name="plain", kind=InputKind.TEXT, text="An invoice."),
    ),
    credential_check=CredentialCheck("/api/v2/classify?page_size=1"),
)

"""Vody: color and pattern classification of product images (PROVIDERS.md §2)."""

from __future__ import annotations

from adapters.base import InputKind, JobInput
from adapters.provider_type import ContractExamples, CredentialCheck, ProviderType
from adapters.vody.adapter import CAPABILITIES, VodyAdapter
from adapters.vody.simulator import (
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    fast_simulator,
)
from adapters.vody.wire import VodyOptions, auth_headers

_CDN = "https://cdn.example.com/products"


def _image(name: str, path: str, **fields: str) -> JobInput:
    return JobInput(name=name, kind=InputKind.URL, url=f"{_CDN}/{path}", fields=fields)


EXAMPLES = ContractExamples(
    model_id="color-classification",
    version=None,
    good_inputs=(
        _image("sneaker", "sneaker-0.png", product_type="Shoes", hex_color_label="#FE2934"),
        _image("boot", "boot-1.png"),
        _image("tote", "tote-2.png", product_type="Bags", category="Accessories"),
    ),
    partly_failing_inputs=(
        _image("sandal", "sandal-3.png", product_type="Shoes"),
        _image("bad-fail-1", "missing-fail-4.png", product_type="Shoes"),
        _image("loafer", "loafer-5.png", product_type="Shoes"),
    ),
    options={"product_type": "Shoes", "category": "Fashion"},
    bad_options={"product_type": ["Shoes"]},
    bad_option_pointer="/options/provider/product_type",
    unsupported_input=JobInput(name="caption", kind=InputKind.TEXT, text="red running shoe"),
    # "boot" has no product_type of its own: it comes from here (or from the options).
    defaults={"product_type": "Shoes"},
)

PROVIDER_TYPE = ProviderType(
    name="vody",
    capabilities=CAPABILITIES,
    auth_headers=auth_headers,
    create_adapter=VodyAdapter,
    create_simulator=create_simulator,
    fast_simulator=fast_simulator,
    simulator_credential=SIMULATOR_KEY,
    base_path="",
    examples=EXAMPLES,
    credential_check=CredentialCheck(
        "/inference/gateway-credential-check/status",
        ok_statuses=frozenset({404}),
        note="key accepted; the probe asked for an inference that does not exist",
    ),
)

__all__ = [
    "CAPABILITIES",
    "EXAMPLES",
    "PROVIDER_TYPE",
    "SIMULATOR_KEY",
    "SimSettings",
    "VodyAdapter",
    "VodyOptions",
    "create_simulator",
    "fast_simulator",
]

"""Modzy: model jobs over text or embedded inputs, with cancel and explanations (PROVIDERS.md §1).

The reference provider: the base URL ends in ``/api`` (``base_path``), auth is
``Authorization: ApiKey <key>``, and models are addressed with a version
(``modzy/ed542963de@1.0.1``). The official library (modzy-sdk 0.11.6) is the oracle the
adapter and simulator are checked against (``tests/oracle/``); which fact comes from
where is in ``docs/providers/modzy.md``.
"""

from __future__ import annotations

from adapters.base import InputKind, JobInput
from adapters.modzy.adapter import CAPABILITIES, ModzyAdapter
from adapters.modzy.sim_models import IMAGE_ID, MODELS, SENTIMENT_ID, TOPICS_ID
from adapters.modzy.simulator import (
    SIM_ACCESS_KEY,
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    fast_simulator,
)
from adapters.modzy.wire import ModzyOptions, auth_headers
from adapters.provider_type import ContractExamples, CredentialCheck, ProviderType


def _text(name: str, text: str) -> JobInput:
    return JobInput(name=name, kind=InputKind.TEXT, text=text)


EXAMPLES = ContractExamples(
    model_id=SENTIMENT_ID,
    version="1.0.1",
    good_inputs=(
        _text("review-1", "Great product, I love it"),
        _text("review-2", "Terrible support and an awful manual"),
        _text("review-3", "The parcel arrived on Tuesday"),
    ),
    partly_failing_inputs=(
        _text("review-4", "Excellent value for money"),
        _text("bad-fail-1", "This one cannot be read"),
        _text("review-5", "Bad fit, I hate the colour"),
    ),
    options={"input_name": "input.txt"},
    bad_options={"timeout": -1},
    bad_option_pointer="/options/provider/timeout",
    unsupported_input=JobInput(
        name="photo-link", kind=InputKind.URL, url="https://cdn.example.com/cat.png"
    ),
)

PROVIDER_TYPE = ProviderType(
    name="modzy",
    capabilities=CAPABILITIES,
    auth_headers=auth_headers,
    create_adapter=ModzyAdapter,
    create_simulator=create_simulator,
    fast_simulator=fast_simulator,
    simulator_credential=SIMULATOR_KEY,
    base_path="/api",
    examples=EXAMPLES,
    credential_check=CredentialCheck("/models?per-page=1"),
)

__all__ = [
    "CAPABILITIES",
    "EXAMPLES",
    "IMAGE_ID",
    "MODELS",
    "PROVIDER_TYPE",
    "SENTIMENT_ID",
    "SIMULATOR_KEY",
    "SIM_ACCESS_KEY",
    "TOPICS_ID",
    "ModzyAdapter",
    "ModzyOptions",
    "SimSettings",
    "create_simulator",
    "fast_simulator",
]

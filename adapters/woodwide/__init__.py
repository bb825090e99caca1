"""Wood Wide AI: tabular AutoML inference on records or stored datasets (PROVIDERS.md §3).

Inputs are ``record`` rows, sent as one CSV upload; or, with
``options.provider.dataset_id`` (or ``dataset_version_id``), ``ref`` inputs whose
``ref`` is the id of a row of that stored dataset (``"0"``, ``"1"``, ...): the
dataset runs whole and the named rows are reported, each under its input's name.

Notes:

* Factor analysis: each input's output is its factor scores (an ``EmbeddingOutput``
  ordered by factor), and the factors themselves are a job-level ``FactorsOutput``.
  In the seed docs' shape (one row per factor) only the ``FactorsOutput`` exists and
  each input succeeds with ``output: null``.
* Wood Wide documents no per-row errors. A row it returns no result for (or lists in
  ``summary.failed_row_ids`` [inferred]) is a failed item, "no result for this row".
  With ``anomaly_format=ids_only`` and seed-shaped factors only that summary list can tell.
* Results are read through the signed ``inference_results_uri`` (without the API key),
  or from ``/results/rows`` when they are large and the provider says they can be paged.
* Identical ``infer-batch`` requests share one upstream job (unless
  ``force_rerun: true``), so cancelling one gateway job cancels the others too.
* ``output_type: parquet`` needs the optional ``pyarrow``; without it json is asked for.

docs/providers/woodwide.md says which of these facts come from the official library,
which from the docs, and which are inferred.
"""

from __future__ import annotations

from typing import Any

from adapters.base import InputKind, JobInput
from adapters.provider_type import ContractExamples, CredentialCheck, ProviderType
from adapters.woodwide.adapter import CAPABILITIES, WoodWideAdapter
from adapters.woodwide.simulator import (
    SIM_STATE,
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    error_body,
    fast_simulator,
)
from adapters.woodwide.wire import WoodWideOptions, auth_headers


def _record(name: str, **cells: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.RECORD, record=cells)


EXAMPLES = ContractExamples(
    model_id="mdl_churn",
    version=None,
    good_inputs=(
        _record("row-1", age=34, plan="pro", monthly_spend=89.5, tenure_months=26),
        _record("row-2", age=51, plan="basic", monthly_spend=19.0, tenure_months=3),
        _record("row-3", age=27, plan="plus", monthly_spend=45.25, tenure_months=11),
        _record("row-4", age=63, plan="pro", monthly_spend=120.0, tenure_months=48),
    ),
    partly_failing_inputs=(
        _record("row-5", age=45, plan="plus", monthly_spend=52.0, tenure_months=7),
        _record("bad-fail-1", age="fail", plan="pro", monthly_spend=0, tenure_months=0),
        _record("row-6", age=38, plan="basic", monthly_spend=22.5, tenure_months=15),
    ),
    options={"output_type": "csv"},
    bad_options={"output_type": "xml"},
    bad_option_pointer="/options/provider/output_type",
    unsupported_input=JobInput(name="note", kind=InputKind.TEXT, text="a customer who churned"),
)

PROVIDER_TYPE = ProviderType(
    name="woodwide",
    capabilities=CAPABILITIES,
    auth_headers=auth_headers,
    create_adapter=WoodWideAdapter,
    create_simulator=create_simulator,
    fast_simulator=fast_simulator,
    simulator_credential=SIMULATOR_KEY,
    base_path="",
    examples=EXAMPLES,
    credential_check=CredentialCheck("/models"),
)

__all__ = [
    "CAPABILITIES",
    "EXAMPLES",
    "PROVIDER_TYPE",
    "SIMULATOR_KEY",
    "SIM_STATE",
    "SimSettings",
    "WoodWideAdapter",
    "WoodWideOptions",
    "auth_headers",
    "create_simulator",
    "error_body",
    "fast_simulator",
]

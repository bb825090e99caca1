"""The Wood Wide adapter fed the real provider's shapes (issue 14, point 5), over loopback.

Each shape is one the official library documents (woodwide 0.9.0) or the real API was
seen to send, served by the simulator switched to it: signed result links on another
host, ``row_paginatable`` null, ``prediction_probs`` as a float or a list per row,
numeric class labels, factors per row, search one row per query, and row pages that
are the combined table (the inputs' columns beside the outputs).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from adapters.base import Counts, JobStatus
from adapters.errors import ProviderBadResponse, ProviderUnavailable
from adapters.outputs import (
    ClassificationOutput,
    EmbeddingOutput,
    FactorsOutput,
    MatchOutput,
    RegressionOutput,
)
from adapters.woodwide import PROVIDER_TYPE, SIMULATOR_KEY
from tests.adapters.test_woodwide_adapter import (
    adapter_on,
    clocked,
    customers,
    outputs,
    request,
    run,
)
from tests.support import wired_adapter

ALL_FORMATS = ("json", "csv", "parquet")


def files_asked(w: Any) -> list[Any]:
    return [r for r in w.control.requests if r.path.startswith("/files/")]


class TestSignedLinks:
    async def test_the_results_file_is_fetched_without_the_key(self):
        """The simulator's link refuses a request that carries a key, as a storage host does."""
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*customers(3)))
            (download,) = files_asked(w)
            others = [r for r in w.control.requests if r is not download]
        assert report.status is JobStatus.SUCCEEDED
        assert "Authorization" not in download.headers
        assert download.status == 200
        assert all(r.headers["Authorization"] == f"Bearer {SIMULATOR_KEY}" for r in others)
        assert all(isinstance(o, ClassificationOutput) for o in outputs(results).values())

    async def test_a_plain_http_link_to_another_host_falls_back_to_the_rows(self):
        """``localhost`` is another host than ``127.0.0.1``: over plain http it is never asked."""
        clock, app = clocked(results_host="localhost")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*customers(3), model="mdl_price"))
            assert files_asked(w) == []
            assert w.control.count("GET", "/results/rows") == 1
        assert report.counts == Counts(total=3, succeeded=3)
        assert all(isinstance(o, RegressionOutput) for o in outputs(results).values())

    async def test_a_plain_http_link_elsewhere_and_no_rows_is_refused_unasked(self):
        clock, app = clocked(results_host="localhost", row_paginatable=None)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            req = request(*customers(2))
            with pytest.raises(ProviderBadResponse, match="not https"):
                await run(w, clock, req)
            assert files_asked(w) == []
            assert w.control.count("GET", "/results/rows") == 0

    async def test_an_https_link_to_another_host_is_followed(self):
        """Allowed, so it is really tried: nothing listens there, so 503, not a refusal."""
        clock, app = clocked(results_origin="https://localhost:9", row_paginatable=None)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderUnavailable):
                await run(w, clock, request(*customers(2)))

    async def test_the_link_keeps_the_response_size_cap(self):
        clock, app = clocked(row_paginatable=False)
        cap = 2500  # every JSON answer fits; 40 embeddings of 8 dimensions (3.7 kB) do not
        async with wired_adapter(
            PROVIDER_TYPE, app=app, upstream_settings=lambda s: replace(s, max_response_bytes=cap)
        ) as w:
            with pytest.raises(ProviderBadResponse, match="larger than"):
                await run(w, clock, request(*customers(40), model="mdl_embed"))
            assert len(files_asked(w)) == 1

    async def test_an_expired_link_without_rows_is_the_providers_fault(self):
        clock, app = clocked(url_ttl_seconds=-10, row_paginatable=None)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderBadResponse, match=r"link was refused \(HTTP 403\)"):
                await run(w, clock, request(*customers(2)))


class TestRowPaginatable:
    @pytest.mark.parametrize("paginatable", [None, False], ids=["null", "false"])
    async def test_large_results_come_from_the_file_when_rows_are_not_offered(self, paginatable):
        clock, app = clocked(row_paginatable=paginatable)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, file_row_limit=1)
            _, report, _ = await run(w, clock, request(*customers(4)), adapter)
            assert w.control.count("GET", "/results/rows") == 0
            assert len(files_asked(w)) == 1
        assert report.counts == Counts(total=4, succeeded=4)


class TestPredictionProbabilities:
    @pytest.mark.parametrize("fmt", [*ALL_FORMATS, "rows"])
    @pytest.mark.parametrize("shape", ["list", "float", "object", "none"])
    @pytest.mark.parametrize("model", ["mdl_rating", "mdl_tier"], ids=["numeric", "text"])
    async def test_multiclass_stays_classification_with_its_score(self, model, shape, fmt):
        """Numeric labels (1-5) too: a regression would lose the label and its score."""
        clock, app = clocked(multiclass_probs=shape)
        output_type = "json" if fmt == "rows" else fmt
        req = request(*customers(4), model=model, output_type=output_type)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, file_row_limit=0 if fmt == "rows" else 500)
            _, _, results = await run(w, clock, req, adapter)
        labels = {"mdl_rating": {"1", "2", "3", "4", "5"}, "mdl_tier": {"basic", "plus", "pro"}}
        for item in results.items.values():
            out = item.output
            assert isinstance(out, ClassificationOutput), out
            assert out.label in labels[model] and out.score is not None and 0 < out.score < 1
            assert out.scores[0].label == out.label and out.scores[0].score == out.score
            per_class = shape in ("list", "object")
            assert len(out.scores) == (len(labels[model]) if per_class else 1)

    @pytest.mark.parametrize("fmt", [*ALL_FORMATS, "rows"])
    async def test_a_regressor_is_still_a_regression(self, fmt):
        clock, app = clocked()
        req = request(
            *customers(3), model="mdl_price", output_type="json" if fmt == "rows" else fmt
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, file_row_limit=0 if fmt == "rows" else 500)
            _, _, results = await run(w, clock, req, adapter)
        assert all(isinstance(o, RegressionOutput) for o in outputs(results).values())


class TestFactorsAndSearch:
    @pytest.mark.parametrize("fmt", [*ALL_FORMATS, "rows"])
    async def test_factors_per_row(self, fmt):
        """woodwide 0.9.0: factor_{k}_score per row, the factors' text and variance beside."""
        clock, app = clocked()
        req = request(
            *customers(4), model="mdl_factors", output_type="json" if fmt == "rows" else fmt
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, file_row_limit=0 if fmt == "rows" else 500)
            _, report, results = await run(w, clock, req, adapter)
        assert report.counts == Counts(total=4, succeeded=4)
        (factors,) = results.job_outputs
        assert isinstance(factors, FactorsOutput)
        assert [f.id for f in factors.factors] == [0, 1, 2]
        assert factors.factors[0].description == "Overall spend level"
        assert all(f.captured_variance for f in factors.factors)
        for item in results.items.values():
            assert isinstance(item.output, EmbeddingOutput) and len(item.output.vector) == 3
            scores = [float(item.raw[f"factor_{k}_score"]) for k in range(3)]
            assert item.output.vector == scores

    async def test_factors_in_the_seed_shape_are_a_job_output_only(self):
        clock, app = clocked(factors_shape="seed")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, _, results = await run(w, clock, request(*customers(2), model="mdl_factors"))
        (factors,) = results.job_outputs
        assert isinstance(factors, FactorsOutput) and len(factors.factors) == 3
        assert [i.output for i in results.items.values()] == [None, None]

    @pytest.mark.parametrize("shape", ["per_query", "per_match", "mapping"])
    async def test_search_in_every_shape(self, shape):
        clock, app = clocked(search_shape=shape)
        seen = []
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            for fmt in ALL_FORMATS:
                req = request(*customers(4), model="mdl_similar", k=3, output_type=fmt)
                _, _, results = await run(w, clock, req)
                seen.append(outputs(results))
        first = seen[0]
        assert all(isinstance(o, MatchOutput) and len(o.matches) == 3 for o in first.values())
        if shape != "mapping":  # the mapping has no scores, and json alone uses it
            assert seen[0] == seen[1] == seen[2]
            for o in first.values():
                scores = [m.score for m in o.matches]
                assert scores == sorted(scores, reverse=True)


class TestCombinedRows:
    async def test_only_output_columns_reach_the_outputs(self):
        """Row pages hold the inputs' columns too: an input named like nothing we know
        must not end up in a ``json`` output, nor in ``raw``."""
        clock, app = clocked()
        inputs = customers(3)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            from_rows = await run(w, clock, request(*inputs), adapter_on(w, file_row_limit=0))
            from_file = await run(w, clock, request(*inputs))
            assert w.control.count("GET", "/results/rows") == 1
        rows_results, file_results = from_rows[2], from_file[2]
        assert outputs(rows_results) == outputs(file_results)
        for item in rows_results.items.values():
            assert not {"age", "plan", "monthly_spend", "tenure_months"} & set(item.raw)
            assert {"id", "prediction", "prediction_prob"} <= set(item.raw)

"""Wood Wide result shapes from the official library and the real API, read (no network).

Each case is a row as the provider sends it: ``prediction_probs`` as a float or a list
(and the object, JSON-text and numpy-text forms csv gives them), numeric class labels,
``{target}_regression`` descriptions, factors per row with ``factor_descriptions``,
search in every shape, and combined-table rows with input and namespaced columns.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from adapters.outputs import (
    ClassificationOutput,
    EmbeddingOutput,
    Factor,
    FactorsOutput,
    JsonOutput,
    LabelScore,
    Match,
    MatchOutput,
    RegressionOutput,
)
from adapters.woodwide import columns, normalize, predictions, search, tables
from adapters.woodwide.tables import Table

RATING = {"prediction_descriptions": {str(n): {"summary": f"{n} stars"} for n in range(1, 6)}}
PRICE = {"prediction_descriptions": {"monthly_spend_regression": {"summary": "spend"}}}


def table(rows: list[dict[str, Any]]) -> Table:
    return tables.table_from_rows(rows)


def read(
    rows: list[dict[str, Any]], kind: str | None = "prediction", **kw: Any
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    names = {str(i): f"r{i}" for i in range(len(rows))}
    items, job_outputs = normalize.items_from_table(table(rows), kind, names, **kw)
    return {n: i.output for n, i in items.items()}, job_outputs


def scores(*pairs: tuple[str, float]) -> list[LabelScore]:
    return [LabelScore(label=label, score=score) for label, score in pairs]


class TestPredictionProbs:
    @pytest.mark.parametrize(
        ("probs", "expected"),
        [
            (0.61, ClassificationOutput(label="3", score=0.61, scores=scores(("3", 0.61)))),
            ("0.61", ClassificationOutput(label="3", score=0.61, scores=scores(("3", 0.61)))),
            (
                [0.05, 0.1, 0.61, 0.2, 0.04],
                ClassificationOutput(
                    label="3",
                    score=0.61,
                    scores=scores(("3", 0.61), ("4", 0.2), ("2", 0.1), ("1", 0.05), ("5", 0.04)),
                ),
            ),
            (
                "[0.05, 0.1, 0.61, 0.2, 0.04]",
                ClassificationOutput(
                    label="3",
                    score=0.61,
                    scores=scores(("3", 0.61), ("4", 0.2), ("2", 0.1), ("1", 0.05), ("5", 0.04)),
                ),
            ),
            (
                "[0.05 0.1  0.61 0.2  0.04]",
                ClassificationOutput(
                    label="3",
                    score=0.61,
                    scores=scores(("3", 0.61), ("4", 0.2), ("2", 0.1), ("1", 0.05), ("5", 0.04)),
                ),
            ),
            (
                {"3": 0.7, "1": 0.3},
                ClassificationOutput(label="3", score=0.7, scores=scores(("3", 0.7), ("1", 0.3))),
            ),
            (
                [{"label": 3, "prob": 0.7}, {"label": 1, "prob": 0.3}],
                ClassificationOutput(label="3", score=0.7, scores=scores(("3", 0.7), ("1", 0.3))),
            ),
        ],
        ids=["float", "float-csv", "list", "list-json-text", "list-numpy-text", "object", "pairs"],
    )
    def test_numeric_labels_stay_classification_with_their_score(self, probs, expected):
        outs, _ = read([{"id": 0, "prediction": 3, "prediction_probs": probs}], descriptions=RATING)
        assert outs["r0"] == expected

    def test_a_list_without_known_labels_keeps_the_top_probability(self):
        outs, _ = read([{"id": 0, "prediction": 2.0, "prediction_probs": [0.2, 0.7, 0.1]}])
        assert outs["r0"] == ClassificationOutput(label="2", score=0.7, scores=scores(("2", 0.7)))

    def test_a_probability_column_decides_for_rows_that_lack_one(self):
        """csv leaves a cell blank; the column still says the model classifies."""
        rows = [
            {"id": 0, "prediction": "4", "prediction_probs": "0.9"},
            {"id": 1, "prediction": "2", "prediction_probs": ""},
        ]
        outs, _ = read(rows)
        assert outs["r1"] == ClassificationOutput(label="2")

    @pytest.mark.parametrize(
        ("described", "expected"),
        [
            (RATING, ClassificationOutput(label="4")),
            (PRICE, RegressionOutput(value=4.0)),
            ({}, RegressionOutput(value=4.0)),
        ],
        ids=["label-descriptions", "regression-descriptions", "nothing-to-go-by"],
    )
    def test_descriptions_decide_between_classes_and_values(self, described, expected):
        outs, _ = read([{"id": 0, "prediction": 4}], descriptions=described)
        assert outs["r0"] == expected

    def test_the_files_own_descriptions_count_too(self):
        body = {"model_type": "prediction", "data": {"id": [0], "prediction": [5]}} | RATING
        items, _ = normalize.items_from_table(
            tables.table_from_json(body), "prediction", {"0": "r0"}
        )
        assert items["r0"].output == ClassificationOutput(label="5")

    @pytest.mark.parametrize("bad", [True, "high", ["x"], [{"label": "a", "prob": "?"}]])
    def test_unreadable_probabilities_keep_the_row_as_json(self, bad):
        row = {"id": 0, "prediction": 1, "prediction_probs": bad}
        outs, _ = read([row, {"id": 1, "prediction": 0, "prediction_probs": [0.9, 0.1]}])
        assert outs["r0"] == JsonOutput(data={"prediction": 1, "prediction_probs": bad})
        assert outs["r1"].type == "classification"  # its neighbour is read as before

    def test_task_of(self):
        assert predictions.task_of(["id", "prediction", "prediction_probs"], PRICE) == (
            "classification"
        )
        assert predictions.task_of(["id", "prediction"], PRICE) == "regression"
        assert predictions.class_labels(PRICE) == []
        assert predictions.class_labels(RATING) == ["1", "2", "3", "4", "5"]


def factor_rows() -> list[dict[str, Any]]:
    names, variances = ("Spend", "Tenure"), (0.5, 0.2)
    rows = []
    for rid, row_scores in enumerate(([1.5, -0.25], [0.0, 2.0])):
        row: dict[str, Any] = {"id": rid}
        for k, (name, variance) in enumerate(zip(names, variances, strict=True)):
            row |= {
                f"factor_{k}_score": row_scores[k],
                f"factor_{k}_description": name,
                f"factor_{k}_captured_variance": variance,
            }
        rows.append(row)
    return rows


class TestFactors:
    def test_per_row_scores_and_the_job_level_factors(self):
        outs, job_outputs = read(factor_rows(), "factors")
        assert outs == {
            "r0": EmbeddingOutput(vector=[1.5, -0.25]),
            "r1": EmbeddingOutput(vector=[0.0, 2.0]),
        }
        assert job_outputs == (
            FactorsOutput(
                factors=[
                    Factor(id=0, description="Spend", captured_variance=0.5),
                    Factor(id=1, description="Tenure", captured_variance=0.2),
                ]
            ),
        )

    def test_factor_descriptions_fill_in_what_the_rows_leave_out(self):
        """The library's ``factor_descriptions``: ``{k: {description, summary, ...}}``."""
        rows = [{"id": 0, "factor_0_score": "0.5", "factor_10_score": "-1"}]
        described = {
            "factor_descriptions": {
                "0": {"description": "Spend", "summary": "S", "captured_variance": 0.6},
                "10": {"description": "Region", "summary": "R", "captured_variance": 0.01},
            }
        }
        outs, job_outputs = read(rows, "factors", descriptions=described)
        assert outs["r0"] == EmbeddingOutput(vector=[0.5, -1.0])
        assert [(f.id, f.description, f.captured_variance) for f in job_outputs[0].factors] == [
            (0, "Spend", 0.6),
            (10, "Region", 0.01),
        ]

    def test_factor_columns_reveal_the_type(self):
        assert columns.detect_model_type(factor_rows()[0]) == "factors"


class TestSearch:
    @pytest.mark.parametrize(
        "row",
        [
            {
                "id": 0,
                "neighbor_1_id": 7,
                "neighbor_1_score": 0.9,
                "neighbor_2_id": 3,
                "neighbor_2_score": 0.8,
                "neighbor_3_id": None,
                "neighbor_3_score": None,
            },
            {"id": "0", "match_1_id": "7", "match_1_score": "0.9", "match_2_id": "3"},
            {"id": 0, "neighbor_ids": [7, 3], "neighbor_scores": [0.9, 0.8]},
            {"id": "0", "neighbors": "[7, 3]", "scores": "[0.9, 0.8]"},
            {"id": 0, "neighbour_ids": [7, 3], "distances": [0.1, 0.2]},
        ],
        ids=["numbered", "numbered-csv", "listed", "listed-csv", "distances"],
    )
    def test_one_row_per_query(self, row):
        outs, _ = read([row], "search")
        assert [m.id for m in outs["r0"].matches] == ["7", "3"]
        assert outs["r0"].matches[0].score in (0.9, None)

    def test_one_row_per_match_is_still_read(self):
        rows = [
            {"id": 0, "match_id": 3, "rank": 2, "score": 0.8},
            {"id": 0, "match_id": 7, "rank": 1, "score": 0.9},
        ]
        outs, _ = read(rows, "search")
        assert outs["r0"] == MatchOutput(
            matches=[Match(id="7", score=0.9), Match(id="3", score=0.8)]
        )

    def test_a_row_without_neighbours_is_kept_as_json(self):
        outs, _ = read([{"id": 0, "something": 1}], "search")
        assert outs["r0"] == JsonOutput(data={"something": 1})

    def test_neighbour_columns_reveal_the_type(self):
        assert columns.detect_model_type(["id", "neighbor_1_id"]) == "search"
        assert search.matches_by_row([]) == {}


class TestCombinedTable:
    def test_inputs_are_dropped_and_namespaced_outputs_read(self):
        """``/results/rows`` rows: the input's columns, then (namespaced) outputs."""
        rows = [
            {
                "id": 0,
                "age": "31",
                "cluster_label": "input column that happens to share a name",
                "clustering_cluster_label": 2,
                "clustering_cluster_description": "Big spenders",
            }
        ]
        expected = [{"id": 0, "cluster_label": 2, "cluster_description": "Big spenders"}]
        assert columns.outputs_only(rows, "clustering") == expected
        bare = [{"id": 0, "age": "31", "cluster_label": 2, "cluster_description": "Big spenders"}]
        assert columns.outputs_only(bare, "clustering") == expected

    def test_an_unknown_model_type_keeps_all_but_the_known_inputs(self):
        rows = [{"id": 0, "age": 31, "plan": "pro", "verdict": "keep"}]
        outs, _ = read(rows, "something_new", combined=True, input_columns=["age", "plan"])
        assert outs["r0"] == JsonOutput(data={"verdict": "keep"})

    def test_embedding_rows_lose_their_input_columns(self):
        rows = [{"id": 0, "dim": "not a dimension", "dim_1": 0.5, "dim_0": 0.25, "age": 3}]
        items, _ = normalize.items_from_table(table(rows), "embedding", {"0": "r0"}, combined=True)
        assert items["r0"].output == EmbeddingOutput(vector=[0.25, 0.5])
        assert items["r0"].raw == {"id": 0, "dim_1": 0.5, "dim_0": 0.25}


class TestDescriptionsTravel:
    def test_the_results_answer_descriptions_are_json_text(self):
        meta = tables.results_meta_from_wire(
            {
                "inference_results_uri": "https://storage.example.com/r.csv?sig=1",
                "row_paginatable": None,
                "descriptions": {
                    "prediction_descriptions": json.dumps(RATING["prediction_descriptions"])
                },
            }
        )
        assert meta.row_paginatable is None
        assert meta.descriptions == RATING

    def test_parquet_metadata_carries_them(self):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        arrow = pa.table(
            {"id": [0], "prediction": [4], "prediction_probs": [[0.1, 0.1, 0.1, 0.6, 0.1]]}
        )
        arrow = arrow.replace_schema_metadata(
            {
                "model_type": "prediction",
                "prediction_descriptions": json.dumps(RATING["prediction_descriptions"]),
            }
        )
        sink = io.BytesIO()
        pq.write_table(arrow, sink)
        parsed = tables.table_from_parquet(sink.getvalue())
        assert parsed.model_type == "prediction"
        items, _ = normalize.items_from_table(parsed, None, {"0": "r0"})
        out = items["r0"].output
        assert isinstance(out, ClassificationOutput)
        assert (out.label, out.score, len(out.scores)) == ("4", 0.6, 5)

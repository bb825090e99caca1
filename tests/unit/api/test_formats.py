"""Results as CSV: outputs and errors flattened into columns."""

from __future__ import annotations

from typing import Any

from gateway.api.formats import flatten_item, to_csv


class TestCsv:
    def test_flattens_outputs_and_errors(self):
        items: list[dict[str, Any]] = [
            {
                "input": "a",
                "status": "succeeded",
                "output": {
                    "type": "classification",
                    "label": "pos",
                    "score": 0.9,
                    "scores": [{"label": "pos", "score": 0.9}],
                    "reasoning": None,
                },
                "error": None,
                "started_at": None,
                "finished_at": None,
                "elapsed_ms": 5,
            },
            {
                "input": "b",
                "status": "failed",
                "output": None,
                "error": {"code": "item_failed", "message": "boom, it broke"},
                "started_at": None,
                "finished_at": None,
                "elapsed_ms": None,
            },
        ]
        text = to_csv(items)
        lines = text.strip().split("\r\n")
        assert lines[0] == (
            "input,status,output_type,output_label,output_score,output_scores,output_reasoning,"
            "error_code,error_message,started_at,finished_at,elapsed_ms"
        )
        assert lines[1].startswith("a,succeeded,classification,pos,0.9,")
        assert lines[2] == 'b,failed,,,,,,item_failed,"boom, it broke",,,'
        assert flatten_item(items[0])["output_scores"] == '[{"label": "pos", "score": 0.9}]'

"""The request models: what a submit may carry and what it refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.api.models import JobCreate


class TestJobCreate:
    def body(self, **over):
        base = {"model": "m/x", "inputs": [{"name": "a", "text": "hi"}]}
        base.update(over)
        return base

    def test_accepts_every_input_kind(self):
        JobCreate.model_validate(
            self.body(
                inputs=[
                    {"name": "t", "text": "x"},
                    {"name": "d", "data": "aGk=", "content_type": "image/png"},
                    {"name": "u", "url": "https://cdn.example.com/a.png", "fields": {"k": "v"}},
                    {"name": "r", "ref": "3240"},
                    {"name": "rec", "record": {"age": 31}},
                ]
            )
        )

    @pytest.mark.parametrize(
        ("inputs", "needle"),
        [
            ([{"name": "a", "text": "x", "ref": "y"}], "exactly one"),
            ([{"name": "a"}], "exactly one"),
            ([{"name": "a", "text": "x"}, {"name": "a", "text": "y"}], "used twice"),
            ([{"name": "bad name!", "text": "x"}], "pattern"),
            ([{"name": "a", "data": "aGk="}], "content_type"),
            ([{"name": "a", "data": "%%%", "content_type": "image/png"}], "base64"),
            ([{"name": "a", "text": "x", "colour": 1}], "Extra inputs"),
            ([], "at least 1"),
        ],
        ids=[
            "two-values",
            "no-value",
            "duplicate",
            "bad-name",
            "data-no-type",
            "bad-base64",
            "unknown-field",
            "empty",
        ],
    )
    def test_rejects(self, inputs, needle):
        with pytest.raises(ValidationError, match=needle):
            JobCreate.model_validate(self.body(inputs=inputs))

    def test_metadata_is_capped(self):
        with pytest.raises(ValidationError):
            JobCreate.model_validate(self.body(metadata={f"k{i}": "v" for i in range(17)}))

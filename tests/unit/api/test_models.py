"""Pure core pieces: request models, auth, the model catalog, CSV flattening, the error tree."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import ModelRef
from gateway.auth import ApiKeyAuthenticator
from gateway.catalog import ModelCatalog
from gateway.errors import Forbidden, GatewayError, NotFound, RequestRejected, Unauthenticated
from gateway.formats import flatten_item, to_csv
from gateway.models import JobCreate
from gateway.settings import ApiKeySettings, hash_api_key
from tests.conftest import make_settings, provider_settings


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


class TestApiKeys:
    auth = ApiKeyAuthenticator(
        [
            ApiKeySettings(id="a", sha256=hash_api_key("good"), tenant="t", scopes=["jobs:read"]),
            ApiKeySettings(id="r", sha256=hash_api_key("old"), tenant="t", revoked=True),
        ]
    )

    @pytest.mark.parametrize(
        "headers",
        [{"Authorization": "Bearer good"}, {"authorization": "bearer good"}, {"X-API-Key": "good"}],
        ids=["bearer", "lowercase", "x-api-key"],
    )
    def test_resolves_principal(self, headers):
        from multidict import CIMultiDict

        p = self.auth.authenticate(CIMultiDict(headers))
        assert (p.tenant, p.key_id, p.scopes) == ("t", "a", frozenset({"jobs:read"}))

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Bearer old"},
            {"Authorization": "Basic Z29vZA=="},
        ],
        ids=["missing", "unknown", "revoked", "other-scheme"],
    )
    def test_unknown_and_revoked_get_the_same_answer(self, headers):
        with pytest.raises(Unauthenticated) as info:
            self.auth.authenticate(headers)
        assert info.value.detail == Unauthenticated().detail

    def test_scope_check(self):
        p = self.auth.authenticate({"X-API-Key": "good"})
        p.require("jobs:read")
        with pytest.raises(Forbidden):
            p.require("jobs:write")


class TestCatalog:
    catalog = ModelCatalog(
        make_settings([provider_settings("modzy", "modzy", "http://127.0.0.1:1/api")])
    )

    def test_alias(self):
        r = self.catalog.resolve("sentiment")
        assert r.ref == ModelRef("modzy", "ed542963de", "1.0.1")
        assert "sentiment" in r.names

    def test_version_filled_from_configuration(self):
        assert self.catalog.resolve("modzy/ed542963de").ref.version == "1.0.1"

    @pytest.mark.parametrize(
        "name",
        ["nope/x", "modzy/unknown", "modzy/ed542963de@9.9.9", "no-slash"],
        ids=["provider", "model", "version", "malformed"],
    )
    def test_unknown_is_not_found(self, name):
        with pytest.raises(NotFound):
            self.catalog.resolve(name)


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


class TestErrorTree:
    def test_caller_errors_are_request_rejected(self):
        for cls in (Unauthenticated, Forbidden, NotFound):
            assert issubclass(cls, RequestRejected)
            assert 400 <= cls.status < 500

    def test_provider_errors_render_through_the_same_base(self):
        from adapters.errors import ProviderError

        assert issubclass(ProviderError, GatewayError)

"""API keys: hashed lookup, revocation, scopes."""

from __future__ import annotations

import pytest

from gateway.auth.principals import ApiKeyAuthenticator
from gateway.auth.settings import ApiKeySettings, hash_api_key
from gateway.errors import Forbidden, Unauthenticated


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

"""API keys: hashed lookup, revocation, scopes."""

from __future__ import annotations

import pytest

from gateway.auth.principals import ApiKeyAuthenticator, Presented, credential_from
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


class TestWhereTheCredentialComesFrom:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"Authorization": "Bearer k1"}, Presented("k1", bearer=True)),
            ({"Authorization": "Bearer k1", "X-API-Key": "k2"}, Presented("k1", bearer=True)),
            ({"X-API-Key": "k2"}, Presented("k2", bearer=False)),
            ({"Authorization": "", "X-API-Key": "k2"}, Presented("k2", bearer=False)),
            ({"Authorization": "Basic Z29vZA==", "X-API-Key": "k2"}, None),
            ({"Authorization": ""}, None),
        ],
        ids=["bearer", "bearer-wins", "x-api-key", "empty-authorization", "other-scheme", "empty"],
    )
    def test_only_authorization_bearer_is_a_bearer(self, headers, expected):
        """F1 (issue 19): X-API-Key is an API key only, beside an empty Authorization too."""
        assert credential_from(headers) == expected

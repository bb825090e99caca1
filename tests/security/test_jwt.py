"""T-A1..A9: the JWT negative matrix, the accepted cases, JWKS fetching and key config."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from typing import Any

import pytest

from gateway.auth.settings import AuthSettings
from tests.conftest import AUTH, KEY, OTHER_AUTH
from tests.security.support import (
    HS_SECRET,
    ISSUER,
    LEEWAY,
    claims,
    ec_key,
    jwt_settings,
    mint,
    public_jwk,
    public_pem,
    raw_token,
    rsa_key,
    signed,
)

LIST = "/v1/jobs"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs256_with_public_key(kid: str | None = "rs") -> str:
    """Algorithm confusion: HS256 'signed' with the RSA public key as the HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    unsigned = raw_token(header, claims()).rsplit(".", 1)[0]
    mac = hmac.new(public_pem(rsa_key("rs")).encode(), unsigned.encode(), hashlib.sha256)
    return unsigned + "." + raw_token({}, {}, mac.digest()).rsplit(".", 1)[1]


def tampered(token: str) -> str:
    head, body, sig = token.split(".")
    return f"{head}.{body}.{sig[:-4]}{'BBBB' if sig.endswith('AAAA') else 'AAAA'}"


def hs(header: dict[str, Any] | None = None, **over: Any) -> str:
    return signed({"alg": "HS256", "kid": "hs", **(header or {})}, claims(**over))


def attacker(header: dict[str, Any]) -> str:
    return signed({"alg": "RS256", **header}, claims(), rsa_key("attacker"))


def bad_tokens(canary_url: str) -> dict[str, str]:
    now = time.time()
    expired = math.floor(now) - (LEEWAY + 1)
    return {
        "alg-none": raw_token({"alg": "none", "typ": "JWT"}, claims()),
        "alg-None": raw_token({"alg": "None", "typ": "JWT"}, claims()),
        "alg-none-with-kid": raw_token({"alg": "none", "kid": "hs"}, claims()),
        "hs256-with-rsa-public-key": hs256_with_public_key(),
        "hs256-with-rsa-public-key-no-kid": hs256_with_public_key(None),
        "alg-not-allowed-HS512": mint(HS_SECRET, "HS512", kid="hs"),
        "alg-not-allowed-RS512": mint(rsa_key("rs"), "RS512", kid="rs"),
        "alg-not-allowed-PS256": mint(rsa_key("rs"), "PS256", kid="rs"),
        "rs256-on-the-ec-kid": mint(rsa_key("rs"), "RS256", kid="es"),
        "bad-signature": tampered(mint(kid="hs")),
        "other-hmac-secret": mint("another-secret-of-enough-length-0123456789", kid="hs"),
        "other-rsa-key": mint(rsa_key("attacker"), "RS256", kid="rs"),
        "exp-past-leeway": mint(kid="hs", exp=expired, iat=expired - 60),
        "nbf-beyond-leeway": mint(kid="hs", nbf=math.ceil(now) + LEEWAY + 5),
        "wrong-aud": mint(kid="hs", aud="gateway-other"),
        "aud-list-without-us": mint(kid="hs", aud=["billing", "search"]),
        "iss-suffix": mint(kid="hs", iss=ISSUER + ".evil"),
        "iss-prefix": mint(kid="hs", iss=ISSUER[:-1]),
        "iss-trailing-slash": mint(kid="hs", iss=ISSUER + "/"),
        "iss-case": mint(kid="hs", iss=ISSUER.upper()),
        "missing-exp": mint(kid="hs", exp=None),
        "missing-iss": mint(kid="hs", iss=None),
        "missing-aud": mint(kid="hs", aud=None),
        "missing-sub": mint(kid="hs", sub=None),
        "missing-tenant": mint(kid="hs", tenant=None),
        "tenant-not-a-name": mint(kid="hs", tenant="../acme"),
        "sub-not-a-string": hs(sub=42),
        "scope-not-a-string": hs(scope={"jobs:read": True}),
        "kid-path-traversal": mint(kid="../../../../etc/passwd"),
        "kid-sql": mint(kid="' OR 1=1 --"),
        "kid-not-a-string": hs({"kid": 7}),
        "crit-unknown": hs({"crit": ["urn:example:unknown"], "urn:example:unknown": 1}),
        "crit-b64": hs({"crit": ["b64"], "b64": True}),
        "jku-to-canary": attacker({"kid": "rs", "jku": canary_url}),
        "jku-without-kid": attacker({"jku": canary_url}),
        "x5u-to-canary": attacker({"kid": "rs", "x5u": canary_url}),
        "embedded-jwk": attacker({"jwk": public_jwk(rsa_key("attacker"), "a")}),
        "not-a-jwt": "a.b.c",
        "garbage": "eyJ!!!.eyJ.sig",
    }


def generic(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


class TestNegativeMatrix:
    async def test_every_bad_token_is_the_same_401_with_no_outbound_call(
        self, make_jwt_gateway, jwks, captured_logs
    ):
        """T-A1..A9: each case is a 401 with one generic body; no key URL is ever fetched."""
        gw = await make_jwt_gateway(jwks.url)
        baseline = await gw.client.get(LIST)  # no credential at all
        expected = generic(await baseline.json(content_type=None))
        tokens = bad_tokens(jwks.canary_url)
        for name, token in tokens.items():
            resp = await gw.client.get(LIST, headers=bearer(token))
            body = await resp.json(content_type=None)
            assert resp.status == 401, (name, body)
            assert resp.content_type == "application/problem+json", name
            assert generic(body) == expected, name
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="gateway"', name
        assert jwks.hits == 0, "no token named a kid only the JWKS could have"
        assert jwks.canary_hits == 0
        logged = json.dumps(captured_logs, default=str)
        assert all(t not in logged for t in tokens.values())
        reasons = {e.get("reason") for e in captured_logs if e.get("event") == "auth_failed"}
        assert {"algorithm_not_allowed", "bad_kid", "unsupported_crit"} <= reasons

    async def test_unknown_kid_fetches_the_configured_jwks_once_per_interval(
        self, make_jwt_gateway, jwks
    ):
        gw = await make_jwt_gateway(jwks.url)
        for i in range(10):
            token = mint(rsa_key("attacker"), "RS256", kid=f"unknown-{i}")
            assert (await gw.client.get(LIST, headers=bearer(token))).status == 401
        assert jwks.hits == 1
        gw.clock.advance(59)
        token = mint(rsa_key("attacker"), "RS256", kid="unknown-late")
        assert (await gw.client.get(LIST, headers=bearer(token))).status == 401
        assert jwks.hits == 1
        gw.clock.advance(1)
        for _ in range(5):
            assert (await gw.client.get(LIST, headers=bearer(token))).status == 401
        assert jwks.hits == 2
        assert jwks.canary_hits == 0


class TestAccepted:
    @pytest.mark.parametrize(
        ("key", "alg", "kid"),
        [
            (HS_SECRET, "HS256", "hs"),
            (HS_SECRET, "HS256", None),
            ("rs", "RS256", "rs"),
            ("es", "ES256", "es"),
        ],
        ids=["hs256", "hs256-no-kid", "rs256", "es256"],
    )
    async def test_configured_keys(self, make_jwt_gateway, key, alg, kid):
        gw = await make_jwt_gateway()
        material = {"rs": rsa_key("rs"), "es": ec_key("es")}.get(key, key)
        resp = await gw.client.get(LIST, headers=bearer(mint(material, alg, kid=kid)))
        assert resp.status == 200, await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"

    async def test_exp_within_leeway_is_accepted_and_just_past_it_is_not(self, make_jwt_gateway):
        gw = await make_jwt_gateway()
        now = time.time()
        inside = math.ceil(now) - (LEEWAY - 1)
        outside = math.floor(now) - (LEEWAY + 1)
        ok = await gw.client.get(LIST, headers=bearer(mint(kid="hs", exp=inside, iat=inside - 9)))
        assert ok.status == 200
        late = await gw.client.get(LIST, headers=bearer(mint(kid="hs", exp=outside, iat=0)))
        assert late.status == 401

    async def test_nbf_within_leeway_is_accepted(self, make_jwt_gateway):
        gw = await make_jwt_gateway()
        token = mint(kid="hs", nbf=math.floor(time.time()) + LEEWAY - 2)
        assert (await gw.client.get(LIST, headers=bearer(token))).status == 200

    async def test_jwks_key_after_rotation(self, make_jwt_gateway, jwks):
        """A kid the issuer publishes later is picked up at the next allowed fetch."""
        gw = await make_jwt_gateway(jwks.url)
        old = mint(rsa_key("jwks-1"), "RS256", kid="j1")
        assert (await gw.client.get(LIST, headers=bearer(old))).status == 200
        jwks.keys.append(public_jwk(rsa_key("jwks-2"), "j2"))
        new = mint(rsa_key("jwks-2"), "RS256", kid="j2")
        assert (await gw.client.get(LIST, headers=bearer(new))).status == 401
        gw.clock.advance(60)
        assert (await gw.client.get(LIST, headers=bearer(new))).status == 200
        assert (await gw.client.get(LIST, headers=bearer(old))).status == 200
        assert jwks.hits == 2

    async def test_jwks_outage_is_a_401_not_a_5xx(self, make_jwt_gateway, jwks):
        jwks.status = 500
        gw = await make_jwt_gateway(jwks.url)
        token = mint(rsa_key("jwks-1"), "RS256", kid="j1")
        assert (await gw.client.get(LIST, headers=bearer(token))).status == 401
        # configured keys keep working
        assert (await gw.client.get(LIST, headers=bearer(mint(kid="hs")))).status == 200

    async def test_scopes_are_read_from_the_scope_claim(self, make_jwt_gateway):
        gw = await make_jwt_gateway()
        reader = mint(kid="hs", scope="jobs:read unrelated:scope")
        assert (await gw.client.get(LIST, headers=bearer(reader))).status == 200
        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "hi"}]}
        resp = await gw.client.post(LIST, json=body, headers=bearer(reader))
        assert resp.status == 403
        as_list = mint(kid="hs", scope=["jobs:read"])
        assert (await gw.client.get(LIST, headers=bearer(as_list))).status == 200
        nothing = mint(kid="hs", scope=None)
        assert (await gw.client.get(LIST, headers=bearer(nothing))).status == 403

    async def test_jwt_in_x_api_key_is_not_accepted(self, make_jwt_gateway):
        gw = await make_jwt_gateway()
        resp = await gw.client.get(LIST, headers={"X-API-Key": mint(kid="hs")})
        assert resp.status == 401

    async def test_jwt_in_x_api_key_beside_an_empty_authorization_is_not_accepted(
        self, make_jwt_gateway
    ):
        """F1 (issue 19): an empty Authorization header does not make X-API-Key a bearer."""
        gw = await make_jwt_gateway()
        token = mint(kid="hs")
        for empty in ("", " "):
            resp = await gw.client.get(LIST, headers={"Authorization": empty, "X-API-Key": token})
            assert resp.status == 401, repr(empty)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json(content_type=None))["code"] == "unauthenticated"
        # an API key in X-API-Key still works beside an empty Authorization
        resp = await gw.client.get(LIST, headers={"Authorization": "", "X-API-Key": KEY})
        assert resp.status == 200
        assert (await gw.client.get(LIST, headers=bearer(token))).status == 200


SUBMIT = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}
#: Another model of the same provider, reachable only by its id.
OTHER_MODEL = "modzy/c60c8dbd79@0.0.1"


async def claims_gateway(make_gateway: Any, **claim_names: Any) -> Any:
    """A gateway in front of the Modzy simulator whose JWTs carry claims under these names."""
    auth = AuthSettings(jwt=jwt_settings(**claim_names))
    return await make_gateway(["modzy"], auth=auth)


class TestConfigurableClaims:
    """``tenant_claim``, ``scope_claim`` and ``models_claim`` name where the token says it."""

    async def test_tenant_and_scopes_come_from_the_configured_claims(self, make_gateway):
        h = await claims_gateway(
            make_gateway, tenant_claim="https://idp.example/org", scope_claim="permissions"
        )
        token = mint(
            kid="hs",
            tenant=None,
            scope=None,
            **{"https://idp.example/org": "acme", "permissions": "jobs:read jobs:write"},
        )
        resp = await h.client.post(LIST, json=SUBMIT, headers=bearer(token))
        assert resp.status == 202, await resp.text()
        job_id = (await resp.json())["id"]
        # The job belongs to the tenant the configured claim named: acme's API key reads
        # it, another tenant's gets 404.
        assert (await h.client.get(f"{LIST}/{job_id}", headers=AUTH)).status == 200
        assert (await h.client.get(f"{LIST}/{job_id}", headers=OTHER_AUTH)).status == 404

    async def test_the_default_claim_names_are_not_read_once_renamed(self, make_gateway):
        h = await claims_gateway(make_gateway, tenant_claim="org", scope_claim="permissions")
        # "tenant" is no longer where the tenant is: no tenant at all is a 401.
        only_default_tenant = mint(kid="hs", permissions="jobs:read")
        assert (await h.client.get(LIST, headers=bearer(only_default_tenant))).status == 401
        # "scope" is no longer where scopes are: a token with scopes only there has none.
        only_default_scope = mint(kid="hs", org="acme", tenant=None)
        resp = await h.client.get(LIST, headers=bearer(only_default_scope))
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"

    @pytest.mark.parametrize(
        ("permissions", "read", "write"),
        [
            ("jobs:read jobs:write", 200, 202),
            ("jobs:read", 200, 403),
            (["jobs:read", "jobs:write"], 200, 202),
            (["jobs:read", "billing:admin"], 200, 403),
            ([], 403, 403),
        ],
        ids=["string", "string-read-only", "list", "list-read-only", "empty-list"],
    )
    async def test_scope_claim_as_a_string_or_a_list(self, make_gateway, permissions, read, write):
        h = await claims_gateway(make_gateway, tenant_claim="org", scope_claim="permissions")
        token = mint(kid="hs", tenant=None, scope=None, org="acme", permissions=permissions)
        assert (await h.client.get(LIST, headers=bearer(token))).status == read
        resp = await h.client.post(LIST, json=SUBMIT, headers=bearer(token))
        assert resp.status == write, await resp.text()

    async def test_a_scope_claim_of_another_type_is_a_401(self, make_gateway):
        h = await claims_gateway(make_gateway, scope_claim="permissions")
        token = mint(kid="hs", scope=None, permissions={"jobs:read": True})
        assert (await h.client.get(LIST, headers=bearer(token))).status == 401

    async def test_models_claim_allows_only_the_listed_models(self, make_gateway):
        h = await claims_gateway(make_gateway, models_claim="models")
        token = mint(kid="hs", models=["sentiment"])
        resp = await h.client.post(LIST, json=SUBMIT, headers=bearer(token))
        assert resp.status == 202, await resp.text()
        other = {**SUBMIT, "model": OTHER_MODEL}
        resp = await h.client.post(LIST, json=other, headers=bearer(token))
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"
        assert h.sim.count("POST") == 1, "the refused model never reached the provider"

    async def test_models_claim_matches_a_model_by_its_id_too(self, make_gateway):
        h = await claims_gateway(make_gateway, models_claim="models")
        token = mint(kid="hs", models=["modzy/ed542963de@1.0.1"])
        assert (await h.client.post(LIST, json=SUBMIT, headers=bearer(token))).status == 202
        elsewhere = mint(kid="hs", models=[OTHER_MODEL])
        assert (await h.client.post(LIST, json=SUBMIT, headers=bearer(elsewhere))).status == 403

    async def test_models_claim_of_another_type_is_a_401(self, make_gateway):
        h = await claims_gateway(make_gateway, models_claim="models")
        token = mint(kid="hs", models="sentiment")
        assert (await h.client.post(LIST, json=SUBMIT, headers=bearer(token))).status == 401

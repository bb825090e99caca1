"""JWT key configuration: short HMAC secrets and mismatched keys refuse to start (T-A9)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from gateway.cli import main
from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError
from gateway.http.app import create_app
from tests.conftest import MINTED
from tests.security.support import ec_key, public_pem, rsa_key

REPO = Path(__file__).resolve().parents[2]
SHORT = "only-31-bytes-of-hmac-secret-xx"
GOOD = "a-secret-of-exactly-32-bytes-ok!"


def config(tmp_path: Path, key_yaml: str, extra: str = "") -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "auth:\n  jwt:\n    issuer: https://idp.example\n    audience: gateway\n"
        f"{extra}    keys:\n      - {key_yaml}\n"
    )
    return path


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return dict(info.value.problems)


class TestKeyConfig:
    def test_short_inline_secret_is_refused_naming_the_field(self, tmp_path):
        assert len(SHORT) == 31
        found = problems(config(tmp_path, f"{{kid: hs, algorithms: [HS256], secret: {SHORT}}}"))
        assert list(found) == ["auth.jwt.keys[0].secret"]
        assert "at least 32 bytes" in found["auth.jwt.keys[0].secret"]
        assert SHORT not in str(found)

    def test_secret_of_32_bytes_is_accepted(self, tmp_path):
        s = load_settings(config(tmp_path, f"{{algorithms: [HS256], secret: '{GOOD}'}}"))
        assert s.auth.jwt is not None
        assert GOOD not in repr(s)

    def test_hs512_needs_64_bytes(self, tmp_path):
        found = problems(config(tmp_path, f"{{algorithms: [HS256, HS512], secret: '{GOOD}'}}"))
        assert "at least 64 bytes" in found["auth.jwt.keys[0].secret"]

    def test_short_secret_from_a_file_or_the_environment(self, tmp_path, monkeypatch):
        (tmp_path / "jwt.key").write_text(SHORT + "\n")
        found = problems(config(tmp_path, "{kid: f, algorithms: [HS256], secret_file: jwt.key}"))
        assert "at least 32 bytes" in found["auth.jwt.keys[f].secret_file"]
        monkeypatch.setenv("GW_TEST_JWT_SECRET", SHORT)
        found = problems(
            config(tmp_path, "{kid: e, algorithms: [HS256], secret_env: GW_TEST_JWT_SECRET}")
        )
        assert "at least 32 bytes" in found["auth.jwt.keys[e].secret_env"]
        monkeypatch.setenv("GW_TEST_JWT_SECRET", GOOD)
        s = load_settings(
            config(tmp_path, "{kid: e, algorithms: [HS256], secret_env: GW_TEST_JWT_SECRET}")
        )
        assert s.auth.jwt is not None
        key = s.auth.jwt.keys[0]
        assert key.secret is not None and key.secret.get_secret_value() == GOOD

    def test_public_key_file_is_read_and_checked_against_its_algorithms(self, tmp_path):
        (tmp_path / "rs.pem").write_text(public_pem(rsa_key("rs")))
        (tmp_path / "es.pem").write_text(public_pem(ec_key("es")))
        s = load_settings(config(tmp_path, "{algorithms: [RS256], public_key_file: rs.pem}"))
        assert s.auth.jwt is not None and s.auth.jwt.keys[0].public_key is not None
        found = problems(config(tmp_path, "{algorithms: [ES256], public_key_file: rs.pem}"))
        assert "RSA key may only verify" in found["auth.jwt.keys[0].public_key_file"]
        found = problems(config(tmp_path, "{algorithms: [RS256], public_key_file: es.pem}"))
        assert "EC key may only verify" in found["auth.jwt.keys[0].public_key_file"]
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        (tmp_path / "weak.pem").write_text(public_pem(weak))
        found = problems(config(tmp_path, "{algorithms: [RS256], public_key_file: weak.pem}"))
        assert "2048" in found["auth.jwt.keys[0].public_key_file"]

    @pytest.mark.parametrize(
        ("key_yaml", "extra", "message"),
        [
            ("{algorithms: [RS256], secret: 'SECRET'}", "", "HMAC secret may only verify"),
            ("{algorithms: [HS256], public_key_file: x.pem}", "", "public key may not verify"),
            ("{algorithms: [none], secret: 'SECRET'}", "", "algorithms"),
            ("{algorithms: [], secret: 'SECRET'}", "", "algorithms"),
            ("{algorithms: [HS256]}", "", "give exactly one of"),
            (
                "{algorithms: [HS256], secret: 'SECRET', secret_env: X}",
                "",
                "give exactly one of",
            ),
            ("{algorithms: [HS256], secret: 'SECRET'}", "    required_claims: [exp]\n", "sub"),
            (
                "{algorithms: [HS256], secret: 'SECRET'}",
                "    jwks_url: https://idp.example/jwks\n    jwks_algorithms: [HS256]\n",
                "jwks_algorithms",
            ),
            ("{kid: '../x', algorithms: [HS256], secret: 'SECRET'}", "", "pattern"),
        ],
        ids=[
            "secret-for-rs256",
            "public-key-for-hs256",
            "alg-none",
            "no-algorithms",
            "no-key",
            "two-sources",
            "required-claims-without-sub",
            "hmac-from-jwks",
            "kid-with-path",
        ],
    )
    def test_refused(self, tmp_path, key_yaml, extra, message):
        found = problems(config(tmp_path, key_yaml.replace("SECRET", GOOD), extra))
        assert any(message in f"{p}: {m}" for p, m in found.items()), found
        assert GOOD not in str(found)

    def test_check_config_exits_non_zero_and_names_the_field(self, tmp_path, capsys):
        path = config(tmp_path, f"{{algorithms: [HS256], secret: {SHORT}}}")
        assert main(["check-config", str(path)]) == 1
        err = capsys.readouterr().err
        assert "auth.jwt.keys[0].secret" in err and SHORT not in err


async def test_the_demo_jwt_from_the_readme_works():
    settings = load_settings(REPO / "config" / "demo.yaml")
    token = jwt.encode(
        {
            "sub": "me",
            "iss": "gateway-demo",
            "aud": "gateway",
            "tenant": "demo",
            "scope": "jobs:read jobs:write",
            "exp": int(time.time()) + 3600,
        },
        "demo-jwt-secret-0123456789abcdef0123",
        algorithm="HS256",
    )
    MINTED.add(token)
    app = create_app(settings, registry=CollectorRegistry())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200, await resp.text()
        other = jwt.encode({"sub": "me"}, "demo-jwt-secret-0123456789abcdef0123", "HS256")
        MINTED.add(other)
        resp = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {other}"})
        assert resp.status == 401

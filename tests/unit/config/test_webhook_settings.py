"""``webhooks``: per-tenant signing secrets from env, file or (demo only) inline, checked."""

from __future__ import annotations

import base64

import pytest

from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError
from tests.unit.config.test_settings import GOOD, write

GOOD_SECRET = "whsec_" + base64.b64encode(b"a-webhook-secret-of-enough-bytes").decode()


def config(secrets: str) -> str:
    return GOOD + f"webhooks:\n  secrets:\n{secrets}"


def test_secrets_come_from_env_file_or_inline_and_sign_for_their_tenant(tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", GOOD_SECRET)
    (tmp_path / "globex.whsec").write_text(GOOD_SECRET.replace("a-web", "b-web") + "\n")
    path = write(
        tmp_path,
        config(
            "    - {tenant: acme, env: ACME_WEBHOOK_SECRET}\n"
            "    - {tenant: globex, file: globex.whsec}\n"
            f"    - {{tenant: acme, value: '{GOOD_SECRET}'}}\n"
        ),
    )
    webhooks = load_settings(path).webhooks
    assert webhooks.tenant_secrets("acme") == [GOOD_SECRET, GOOD_SECRET]
    assert webhooks.tenant_secrets("globex") == [GOOD_SECRET.replace("a-web", "b-web")]
    assert webhooks.tenant_secrets("nobody") == []
    assert GOOD_SECRET not in repr(webhooks)


@pytest.mark.parametrize(
    ("entry", "env", "where", "message"),
    [
        ("{tenant: acme, env: UNSET_SECRET}", None, "secrets[0].env", "is not set"),
        ("{tenant: acme, env: S}", "not-a-whsec", "secrets[0]", "starts with 'whsec_'"),
        ("{tenant: acme, env: S}", "whsec_%%%", "secrets[0]", "base64"),
        (
            "{tenant: acme, env: S}",
            "whsec_" + base64.b64encode(b"short").decode(),
            "secrets[0]",
            "24 random bytes",
        ),
        ("{tenant: acme, file: missing.whsec}", None, "secrets[0].file", "cannot read"),
        ("{tenant: acme, value: whsec_x, env: S}", GOOD_SECRET, "secrets[0]", "exactly one"),
    ],
    ids=["unset", "prefix", "not-base64", "too-short", "no-file", "two-sources"],
)
def test_a_bad_secret_is_named_by_path_and_never_shown(
    tmp_path, monkeypatch, entry, env, where, message
):
    if env is not None:
        monkeypatch.setenv("S", env)
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, config(f"    - {entry}\n")))
    problems = dict(err.value.problems)
    assert any(where in path and message in text for path, text in problems.items()), problems
    if env is not None and len(env) > 8:
        assert env not in str(err.value)

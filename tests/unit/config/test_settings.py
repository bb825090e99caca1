"""Configuration: YAML + environment, credentials from env or file, every error by path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.auth.settings import hash_api_key
from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError

REPO = Path(__file__).resolve().parents[3]

GOOD = """
providers:
  - name: modzy-eu
    type: modzy
    base_url: https://modzy.example/api
    credential: {file: modzy.key}
    models:
      - {id: ed542963de, version: "1.0.1", output_type: classification}
aliases:
  sentiment: modzy-eu/ed542963de@1.0.1
api_keys:
  - {id: svc, sha256: "HASH", tenant: acme, scopes: [jobs:read]}
""".replace("HASH", hash_api_key("k"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def write(tmp_path: Path, text: str, key: str | None = "secret-modzy-key") -> Path:
    if key is not None:
        (tmp_path / "modzy.key").write_text(key + "\n")
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


class TestLoadSettings:
    def test_reads_yaml_and_credential_file_relative_to_the_config(self, tmp_path):
        s = load_settings(write(tmp_path, GOOD))
        p = s.providers[0]
        assert p.name == "modzy-eu"
        assert p.secret is not None and p.secret.get_secret_value() == "secret-modzy-key"
        assert s.aliases == {"sentiment": "modzy-eu/ed542963de@1.0.1"}
        assert "secret-modzy-key" not in repr(s)

    def test_environment_overrides_the_file(self, tmp_path, monkeypatch):
        monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "4096")
        monkeypatch.setenv("GATEWAY_REDIS__URL", "redis://127.0.0.1:6379/0")
        s = load_settings(write(tmp_path, GOOD + "max_body_bytes: 2048\n"))
        assert s.max_body_bytes == 4096
        assert s.redis.url == "redis://127.0.0.1:6379/0"

    def test_credential_from_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("MODZY_KEY_FOR_TEST", "from-env")
        text = GOOD.replace("{file: modzy.key}", "{env: MODZY_KEY_FOR_TEST}")
        s = load_settings(write(tmp_path, text, key=None))
        assert s.providers[0].secret is not None
        assert s.providers[0].secret.get_secret_value() == "from-env"

    def test_settings_are_frozen(self, tmp_path):
        s = load_settings(write(tmp_path, GOOD))
        with pytest.raises(ValueError, match="frozen"):
            s.max_body_bytes = 1  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            (("https://modzy.example/api", "not a url"), "providers[modzy-eu].base_url"),
            (("type: modzy", "type: nope"), "providers[modzy-eu].type"),
            (("{file: modzy.key}", "{file: missing.key}"), "providers[modzy-eu].credential.file"),
            (
                ("{file: modzy.key}", "{env: SURELY_NOT_SET_1234}"),
                "providers[modzy-eu].credential.env",
            ),
            (("{file: modzy.key}", "{env: A, file: b}"), "providers[modzy-eu].credential"),
            (("modzy-eu/ed542963de@1.0.1", "nowhere/x"), "aliases.sentiment"),
            (("tenant: acme", "tenant: acme, extra_field: 1"), "api_keys[svc].extra_field"),
            (("scopes: [jobs:read]", "scopes: [root]"), "api_keys[svc].scopes[0]"),
        ],
        ids=[
            "bad-url",
            "bad-type",
            "missing-file",
            "unset-env",
            "two-sources",
            "alias-target",
            "unknown-field",
            "bad-scope",
        ],
    )
    def test_names_the_invalid_field(self, tmp_path, change, path):
        old, new = change
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, GOOD.replace(old, new)))
        assert path in [p for p, _ in info.value.problems], info.value.problems

    def test_reports_every_problem_at_once(self, tmp_path):
        text = GOOD.replace("https://modzy.example/api", "nope").replace(
            "tenant: acme", "tenant: ''"
        )
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text))
        assert len(info.value.problems) >= 2

    def test_invalid_environment_value_names_the_field(self, tmp_path, monkeypatch):
        monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "-1")
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, GOOD))
        assert "max_body_bytes" in [p for p, _ in info.value.problems]

    def test_shipped_configurations_are_valid(self, monkeypatch):
        assert len(load_settings(REPO / "config" / "demo.yaml").providers) == 6
        for var in ("MODZY_EU", "VODY", "ANNOLAB", "LLAMA_CLOUD", "WOODWIDE"):
            monkeypatch.setenv(f"{var}_API_KEY", "set-by-test")
        example = load_settings(REPO / "config" / "gateway.example.yaml")
        assert {p.type for p in example.providers} == {
            "modzy",
            "vody",
            "woodwide",
            "annolab",
            "llamacloud",
        }

    def test_every_example_env_variable_is_a_real_setting(self, monkeypatch):
        """config/gateway.example.env documents only variables the gateway reads."""
        seen = 0
        for line in (REPO / "config" / "gateway.example.env").read_text().splitlines():
            line = line.lstrip("# ").strip()
            if not line.startswith("GATEWAY_") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            value = value.split("#")[0].strip().strip("'")
            monkeypatch.setenv(name, value)
            seen += 1
        for var in ("MODZY_EU", "VODY", "ANNOLAB", "LLAMA_CLOUD", "WOODWIDE"):
            monkeypatch.setenv(f"{var}_API_KEY", "set-by-test")
        settings = load_settings(REPO / "config" / "gateway.example.yaml")
        assert seen > 15
        assert settings.redis.url == "redis://redis:6379/0"


class TestCli:
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
        )

    def test_check_config_accepts_the_demo_config(self):
        result = self.run("check-config", str(REPO / "config" / "demo.yaml"))
        assert result.returncode == 0, result.stderr
        assert "configuration OK" in result.stdout

    def test_check_config_prints_every_invalid_field_and_fails(self, tmp_path):
        bad = write(
            tmp_path, GOOD.replace("https://modzy.example/api", "x").replace("[jobs:read]", "[x]")
        )
        result = self.run("check-config", str(bad))
        assert result.returncode == 1
        assert "providers[modzy-eu].base_url" in result.stderr
        assert "api_keys[svc].scopes[0]" in result.stderr

    def test_check_config_lists_schema_and_reference_problems_together(self, tmp_path):
        text = GOOD.replace("[jobs:read]", "[x]").replace(
            "modzy-eu/ed542963de@1.0.1", "modzy-eu/missing"
        )
        result = self.run("check-config", str(write(tmp_path, text)))
        assert result.returncode == 1
        assert "api_keys[svc].scopes[0]" in result.stderr
        assert "aliases.sentiment" in result.stderr

    @pytest.mark.parametrize(
        ("yaml_url", "env_url"),
        [
            ("redis://redis:notaport/0", None),
            ("redis+sentinel://sentinel:26379", None),
            (None, "http://redis:6379"),
        ],
        ids=["port", "sentinel-without-service", "scheme-from-env"],
    )
    def test_serve_refuses_a_bad_redis_url_before_binding(self, tmp_path, yaml_url, env_url):
        """Exit 2 naming ``redis.url``, no traceback, and the port never listened."""
        text = GOOD + (f"redis: {{url: '{yaml_url}'}}\n" if yaml_url else "")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        if env_url:
            env["GATEWAY_REDIS__URL"] = env_url
        port = free_port()
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gateway", "serve"),
                *("--config", str(write(tmp_path, text))),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        listened = False
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            listened = listened or _listening(port)
            time.sleep(0.01)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 2, (out, err)
        assert not listened and not _listening(port)
        assert "redis.url" in err
        assert "Traceback" not in err + out

    def test_serve_exits_before_binding_on_invalid_config(self, tmp_path):
        bad = write(tmp_path, GOOD.replace("type: modzy", "type: nope"))
        result = self.run("serve", "--config", str(bad), "--port", "1")
        assert result.returncode != 0
        assert "providers[modzy-eu].type" in result.stderr


class TestRedisUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "redis://127.0.0.1:6379/0",
            "rediss://:secret@redis.example:6380",
            "redis://redis",
            "unix:///run/redis.sock?db=2",
            "redis+sentinel://s1:26379,s2:26380/mymaster",
            "redis+sentinel://:pw@s1:26379/mymaster/3",
        ],
    )
    def test_takes_the_urls_redis_py_and_sentinel_take(self, tmp_path, url):
        s = load_settings(write(tmp_path, GOOD + f"redis: {{url: '{url}'}}\n"))
        assert s.redis.url == url

    @pytest.mark.parametrize(
        "url",
        [
            "http://redis:6379",
            "redis//redis:6379",
            "redis://redis:port",
            "redis://redis:99999",
            "redis://redis/zero",
            "redis://:6379/0",
            "redis+sentinel://s1:26379",
            "redis+sentinel://s1/mymaster",
            "redis+sentinel://s1:26379/mymaster/db1",
        ],
    )
    def test_refuses_what_no_client_can_use_naming_the_field(self, tmp_path, url):
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, GOOD + f"redis: {{url: '{url}'}}\n"))
        assert [p for p, _ in info.value.problems] == ["redis.url"], info.value.problems

    @pytest.mark.parametrize("url", ["redis+sentinel://s:26379/m", "redis://node:7000/3"])
    def test_cluster_mode_takes_redis_urls_of_database_0_only(self, tmp_path, url):
        text = GOOD + f"redis: {{mode: cluster, url: '{url}'}}\n"
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text))
        assert [p for p, _ in info.value.problems] == ["redis.url"]

    @pytest.mark.parametrize("url", ["redis://node:7000", "redis://node:7000/0"])
    def test_cluster_mode_builds_a_cluster_client(self, tmp_path, url):
        from gateway.state.backends import redis_client
        from gateway.state.redis_cluster import BoundedRedisCluster

        text = GOOD + f"redis: {{mode: cluster, url: '{url}'}}\n"
        assert isinstance(redis_client(load_settings(write(tmp_path, text))), BoundedRedisCluster)

    def test_a_bad_url_from_the_environment_names_the_field(self, tmp_path, monkeypatch):
        monkeypatch.setenv("GATEWAY_REDIS__URL", "tcp://redis:6379")
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, GOOD))
        assert "redis.url" in [p for p, _ in info.value.problems]

    def test_sentinel_url_parts(self):
        from gateway.state.redis_url import parse_sentinel_url

        url = parse_sentinel_url("redis+sentinel://u:p%40ss@s1:26379,[::1]:26380/mymaster/4")
        assert url.sentinels == (("s1", 26379), ("::1", 26380))
        assert (url.service_name, url.db, url.username, url.password) == (
            "mymaster",
            4,
            "u",
            "p@ss",
        )

    def test_a_refused_url_is_not_repeated_with_its_password(self, tmp_path):
        text = GOOD + "redis: {url: 'redis+sentinel://:hunter2@s1/mymaster'}\n"
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text))
        assert "hunter2" not in str(info.value)


class TestReferences:
    @pytest.mark.parametrize(
        ("change", "path"),
        [
            (("modzy-eu/ed542963de@1.0.1", "modzy-eu/nope"), "aliases.sentiment"),
            (("modzy-eu/ed542963de@1.0.1", "modzy-eu/ed542963de@9"), "aliases.sentiment"),
            (("modzy-eu/ed542963de@1.0.1", "not a model"), "aliases.sentiment"),
            (
                ("scopes: [jobs:read]", "scopes: [jobs:read], models: [nope]"),
                "api_keys[svc].models[0]",
            ),
            (
                ("scopes: [jobs:read]", "scopes: [jobs:read], models: [sentiment, modzy-eu/x]"),
                "api_keys[svc].models[1]",
            ),
            (
                ("scopes: [jobs:read]", "scopes: [jobs:read], models: [ghost/*]"),
                "api_keys[svc].models[0]",
            ),
        ],
        ids=[
            "alias-model",
            "alias-version",
            "alias-shape",
            "key-alias",
            "key-model",
            "key-provider",
        ],
    )
    def test_names_what_points_nowhere(self, tmp_path, change, path):
        old, new = change
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, GOOD.replace(old, new)))
        assert [p for p, _ in info.value.problems] == [path], info.value.problems

    @pytest.mark.parametrize(
        "models",
        ["[sentiment]", "[modzy-eu/ed542963de]", "[modzy-eu/ed542963de@1.0.1]", "['modzy-eu/*']"],
    )
    def test_key_allow_lists_take_aliases_models_and_providers(self, tmp_path, models):
        text = GOOD.replace("scopes: [jobs:read]", f"scopes: [jobs:read], models: {models}")
        assert load_settings(write(tmp_path, text)).api_keys[0].models

    def test_a_provider_that_lists_no_models_takes_any_model_id(self, tmp_path):
        listed = '      - {id: ed542963de, version: "1.0.1", output_type: classification}\n'
        text = GOOD.replace("    models:\n" + listed, "")
        assert load_settings(write(tmp_path, text)).aliases["sentiment"]

    def test_schema_and_cross_field_problems_come_in_one_round(self, tmp_path):
        text = (
            GOOD.replace("{file: modzy.key}", "{env: SURELY_NOT_SET_1234}")
            .replace("modzy-eu/ed542963de@1.0.1", "modzy-eu/missing")
            .replace("tenant: acme", "tenant: acme, models: [ghost/x]")
            + "max_body_bytes: -1\nredis: {url: 'http://nope'}\n"
        )
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text, key=None))
        assert {p for p, _ in info.value.problems} == {
            "max_body_bytes",
            "redis.url",
            "providers[modzy-eu].credential.env",
            "aliases.sentiment",
            "api_keys[svc].models[0]",
        }, info.value.problems

    def test_an_invalid_provider_is_not_also_an_unknown_one(self, tmp_path):
        text = GOOD.replace("https://modzy.example/api", "not a url")
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text))
        assert [p for p, _ in info.value.problems] == ["providers[modzy-eu].base_url"]


def test_a_model_output_type_is_one_the_api_documents():
    """/v1/models announces it as an enum of /openapi.json: a typo is refused at load."""
    from pydantic import ValidationError

    from gateway.config.settings import ModelSettings

    assert ModelSettings(id="m", output_type="regression").output_type == "regression"
    with pytest.raises(ValidationError, match="output_type"):
        ModelSettings(id="m", output_type="clasification")


class TestAliasChains:
    """An alias may name a chain of targets, optionally weighted (gateway.jobs.fallback)."""

    TWO = GOOD.replace(
        "aliases:\n",
        "  - name: modzy-us\n    type: modzy\n    base_url: https://us.modzy.example/api\n"
        "    credential: {file: modzy.key}\n    models:\n"
        '      - {id: ed542963de, version: "1.0.1", output_type: classification}\n'
        '      - {id: b7d4c1a9e2, version: "2.0.0", output_type: json}\n'
        "aliases:\n",
    )

    def aliases(self, value: str) -> str:
        return self.TWO.replace("sentiment: modzy-eu/ed542963de@1.0.1", f"sentiment: {value}")

    @pytest.mark.parametrize(
        "value",
        [
            "[modzy-eu/ed542963de@1.0.1, modzy-us/ed542963de@1.0.1]",
            "[{model: modzy-eu/ed542963de@1.0.1, weight: 3},"
            " {model: modzy-us/ed542963de@1.0.1, weight: 1}]",
            "[{model: modzy-eu/ed542963de@1.0.1, weight: 1},"
            " {model: modzy-us/ed542963de@1.0.1, weight: 0}]",
        ],
        ids=["ordered", "weighted", "weight-0-is-fallback-only"],
    )
    def test_takes_ordered_and_weighted_chains(self, tmp_path, value):
        settings = load_settings(write(tmp_path, self.aliases(value)))
        chain = settings.alias_chains()["sentiment"]
        assert [t.model for t in chain] == [
            "modzy-eu/ed542963de@1.0.1",
            "modzy-us/ed542963de@1.0.1",
        ]

    @pytest.mark.parametrize(
        ("value", "path", "says"),
        [
            ("[]", "aliases.sentiment", "at least one target"),
            (
                "[modzy-eu/ed542963de@1.0.1, modzy-eu/ed542963de@1.0.1]",
                "aliases.sentiment",
                "each target once",
            ),
            (
                "[{model: modzy-eu/ed542963de@1.0.1, weight: 1}, modzy-us/ed542963de@1.0.1]",
                "aliases.sentiment",
                "every target a weight",
            ),
            (
                "[{model: modzy-eu/ed542963de@1.0.1, weight: -1}]",
                "aliases.sentiment",
                "'weight' must be a number",
            ),
            (
                "[{model: modzy-eu/ed542963de@1.0.1, wieght: 1}]",
                "aliases.sentiment",
                "unknown field 'wieght'",
            ),
            ("[modzy-eu/ed542963de@1.0.1, ghost/x]", "aliases.sentiment[1]", "ghost/x"),
            (
                "[modzy-eu/ed542963de@1.0.1, modzy-us/b7d4c1a9e2]",
                "aliases.sentiment",
                "share one output type",
            ),
        ],
        ids=["empty", "repeated", "partly-weighted", "negative", "typo", "unknown", "mixed"],
    )
    def test_names_a_bad_chain_clearly(self, tmp_path, value, path, says):
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, self.aliases(value)))
        problems = info.value.problems
        assert [p for p, _ in problems] == [path], problems
        assert says in problems[0][1], problems

    def test_a_chain_is_checked_also_when_the_schema_failed_elsewhere(self, tmp_path):
        value = "[modzy-eu/ed542963de@1.0.1, ghost/x]"
        text = self.aliases(value) + "max_body_bytes: -1\n"
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text))
        assert {p for p, _ in info.value.problems} == {"max_body_bytes", "aliases.sentiment[1]"}

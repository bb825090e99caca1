"""Configuration: YAML + environment, credentials from env or file, every error by path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import ConfigError, hash_api_key, load_settings

REPO = Path(__file__).resolve().parents[2]

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
        assert len(load_settings(REPO / "config" / "demo.yaml").providers) == 5
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

    def test_serve_exits_before_binding_on_invalid_config(self, tmp_path):
        bad = write(tmp_path, GOOD.replace("type: modzy", "type: nope"))
        result = self.run("serve", "--config", str(bad), "--port", "1")
        assert result.returncode != 0
        assert "providers[modzy-eu].type" in result.stderr

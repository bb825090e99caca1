"""Configuration errors name the file and line, and say what to write instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
redis:
  socket_timeout: 0.5
providers:
  - name: modzy-eu
    type: modzy
    base_url: https://modzy.example/api
    credential: {env: TEST_MODZY_KEY}
  - name: vody
    type: vody
    base_url: https://vody.example
    credential: {env: TEST_VODY_KEY}
"""


def located(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.located()


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("TEST_MODZY_KEY", "set-by-test")
    monkeypatch.setenv("TEST_VODY_KEY", "set-by-test")


class TestConfigMessages:
    def test_unknown_field_suggests_the_nearest_and_names_its_line(self, tmp_path):
        found = located(tmp_path, GOOD.replace("socket_timeout", "soket_timeout"))
        assert found == [
            f"{tmp_path}/gw.yaml:2: redis.soket_timeout: unknown field 'soket_timeout' "
            "— did you mean 'socket_timeout'?"
        ]

    def test_unknown_field_in_a_list_item_points_at_that_item(self, tmp_path):
        text = GOOD + "    timeout: {connect: 1}\n"
        (line,) = located(tmp_path, text)
        assert line.endswith(
            ":12: providers[vody].timeout: unknown field 'timeout' — did you mean 'timeouts'?"
        )

    def test_unknown_field_far_from_any_says_so_without_a_guess(self, tmp_path):
        (line,) = located(tmp_path, GOOD + "zzzqqq: 1\n")
        assert line.endswith(":12: zzzqqq: unknown field 'zzzqqq'")

    def test_inline_credential_explains_env_and_file(self, tmp_path):
        text = GOOD.replace("{env: TEST_VODY_KEY}", '"vody-secret-123"')
        (line,) = located(tmp_path, text)
        assert ":11: providers[vody].credential: a credential is never written inline" in line
        assert "{env: VARIABLE}" in line and "{file: path}" in line
        assert "vody-secret-123" not in line

    def test_cross_field_problem_gets_its_line_too(self, tmp_path, monkeypatch):
        monkeypatch.delenv("TEST_VODY_KEY")
        (line,) = located(tmp_path, GOOD)
        assert line.endswith(
            ":11: providers[vody].credential.env: environment variable TEST_VODY_KEY is not set"
        )

    @pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
    def test_a_tracing_protocol_whose_exporter_is_missing_is_a_config_error(
        self, tmp_path, protocol
    ):
        # This venv has the dev extra, so not the tracing-protobuf one (they conflict):
        # refused at load with the way out, not a traceback when the app is built.
        text = GOOD + f"tracing: {{enabled: true, protocol: {protocol}}}\n"
        (line,) = located(tmp_path, text)
        assert f"tracing.protocol: '{protocol}' needs the gateway's 'tracing-protobuf'" in line
        off = GOOD + f"tracing: {{enabled: false, protocol: {protocol}}}\n"
        path = tmp_path / "off.yaml"
        path.write_text(off, encoding="utf-8")
        assert load_settings(path).tracing.protocol == protocol  # off: nothing to export

    def test_an_alias_written_in_full_is_checked_like_any_alias(self, tmp_path):
        text = GOOD + "aliases:\n  cached: {targets: nowhere/x, cache: {items: true}}\n"
        (line,) = located(tmp_path, text)
        assert "aliases.cached" in line and "nowhere" in line

    def test_bad_value_names_the_line_of_its_key(self, tmp_path):
        (line,) = located(tmp_path, GOOD.replace("https://vody.example", "vody.example"))
        assert line.endswith(
            ":10: providers[vody].base_url: not an http(s) URL with a host, "
            "e.g. https://api.example.com/v1"
        )

    def test_yaml_syntax_error_names_the_file_and_line(self, tmp_path):
        (line,) = located(tmp_path, "server:\n  port: 80\n host: x\n")
        assert line.startswith(f"{tmp_path}/gw.yaml:3: <file>: not valid YAML: ")
        assert "<unicode string>" not in line


class TestCliMessages:
    def run(self, *args: str, shell: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["sh", "-c", shell] if shell else [sys.executable, "-m", "gateway", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)

    def test_bare_gateway_prints_help(self):
        result = self.run()
        assert result.returncode == 0
        assert result.stdout.startswith("usage: gateway")
        assert "check-provider" in result.stdout and "``" not in result.stdout

    def test_version(self):
        result = self.run("--version")
        assert result.returncode == 0
        assert result.stdout.strip() == "gateway 0.1.0"

    @pytest.mark.parametrize("command", ["serve", "demo", "simulate", "check-config"])
    def test_every_option_help_shows_its_default(self, command):
        result = self.run(command, "--help")
        assert result.returncode == 0
        if command in ("demo", "simulate"):
            assert "(default: " in result.stdout
        if command == "serve":
            assert "(default: server.port)" in result.stdout
        assert "(default: None)" not in result.stdout

    def test_check_config_shows_file_and_line(self, tmp_path):
        path = tmp_path / "gw.yaml"
        path.write_text("redis:\n  soket_timeout: 1\n", encoding="utf-8")
        result = self.run("check-config", str(path))
        assert result.returncode == 1
        assert f"  {path}:2: redis.soket_timeout: unknown field 'soket_timeout'" in result.stderr

    def test_example_configuration_checks_cleanly_with_its_env_file(self):
        """The documented first step of running it for real, exactly as written."""
        gateway = Path(sys.executable).parent / "gateway"
        result = self.run(
            shell=f"set -a; . config/gateway.example.env; set +a; "
            f"{gateway} check-config config/gateway.example.yaml"
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("configuration OK: 5 providers")

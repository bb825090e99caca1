"""``gateway check-provider`` against the provider simulators over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from adapters.registry import KNOWN_TYPES, provider_type
from gateway.cli import main
from gateway.simulators import simulators_app


@pytest.fixture
async def sims(aiohttp_server) -> TestServer:
    server: TestServer = await aiohttp_server(simulators_app())
    return server


def _config(tmp_path: Path, base: str, keys: dict[str, str]) -> Path:
    """A configuration with every provider type at ``base``/<type>, each credential in a file."""
    lines = ["providers:"]
    for ptype in KNOWN_TYPES:
        (tmp_path / f"{ptype}.key").write_text(keys.get(ptype, "") + "\n", encoding="utf-8")
        url = f"{base}/{ptype}{provider_type(ptype).base_path}"
        lines += [
            f"  - name: {ptype}",
            f"    type: {ptype}",
            f"    base_url: {url}",
            f"    credential: {{file: {ptype}.key}}",
            "    timeouts: {connect: 2, read: 5, total: 5}",
        ]
    path = tmp_path / "gateway.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sim_keys() -> dict[str, str]:
    return {t: provider_type(t).simulator_credential for t in KNOWN_TYPES}


async def _run(argv: list[str]) -> int:
    # main() runs its own event loop (asyncio.run), so it runs in a thread beside the test's.
    return await asyncio.to_thread(main, argv)


class TestCheckProvider:
    async def test_every_provider_ok_with_its_credential(self, sims, tmp_path, capsys):
        config = _config(tmp_path, str(sims.make_url("")).rstrip("/"), _sim_keys())
        assert await _run(["check-provider", "--all", "--config", str(config)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert sorted(line.split(":")[0] for line in out) == sorted(KNOWN_TYPES)
        for line in out:
            assert ": OK (HTTP " in line and " ms" in line, line
        modzy = next(line for line in out if line.startswith("modzy:"))
        assert "HTTP 200 from GET http://" in modzy and "/modzy/api/models" in modzy

    @pytest.mark.parametrize("ptype", KNOWN_TYPES)
    async def test_wrong_credential_is_refused_and_names_where_it_came_from(
        self, sims, tmp_path, capsys, ptype
    ):
        keys = {**_sim_keys(), ptype: "not-the-key-0000"}
        config = _config(tmp_path, str(sims.make_url("")).rstrip("/"), keys)
        assert await _run(["check-provider", ptype, "--config", str(config)]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        (line,) = captured.err.splitlines()
        assert line.startswith(f"{ptype}: credential refused (HTTP 40")
        assert f"check the file {ptype}.key" in line
        assert "not-the-key-0000" not in line

    async def test_unreachable_base_url(self, tmp_path, capsys):
        with socket.socket() as s:  # a port nothing listens on once closed
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = _config(tmp_path, f"http://127.0.0.1:{port}", _sim_keys())
        assert await _run(["check-provider", "vody", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"vody: unreachable: cannot connect to 127.0.0.1:{port}")
        assert "check base_url" in err

    async def test_base_url_of_something_else(self, sims, tmp_path, capsys):
        """A base URL that answers, but is not the provider's API (a wrong path)."""
        config = _config(tmp_path, str(sims.make_url("/nothing-here")).rstrip("/"), _sim_keys())
        assert await _run(["check-provider", "woodwide", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("woodwide: unexpected answer (HTTP 404 from GET ")
        assert "does not look like a woodwide API" in err

    async def test_unknown_provider_name(self, sims, tmp_path, capsys):
        config = _config(tmp_path, str(sims.make_url("")).rstrip("/"), _sim_keys())
        assert await _run(["check-provider", "modzy-eu", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert "no provider named 'modzy-eu'" in err and "configured: modzy, vody" in err

"""The docs' shell examples, run as written against ``gateway demo``.

Every ```` ```sh ```` block in ``README.md`` and ``docs/`` runs in bash (``set -e -o
pipefail``), in order within its page, against one demo gateway, unless the line before it
is ``<!-- not run: <reason> -->`` (a deployment command, a server left running, a
placeholder the reader fills in). The only change made to a block is the ports (the
gateway's, 8080, and the simulators', 9100). Each HTTP
answer a block gets is checked: a 2xx, or a status its own text names (the examples show
404s, 409s and 422s on purpose); a block that makes no request at all fails too, so a
typo cannot turn one into a no-op.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.processes import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
_BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]*?) -->\n)?```sh\n(?P<code>.*?)```", re.S)
_STATUS = "__http_status__"


def blocks(page: Path) -> list[tuple[str, str | None]]:
    """(code, the reason it is not run or None) of each ``sh`` block, in order."""
    text = page.read_text(encoding="utf-8")
    return [(m["code"], m["why"]) for m in _BLOCK.finditer(text)]


def run_cases() -> list[tuple[Path, int, str]]:
    return [
        (page, i, code)
        for page in PAGES
        for i, (code, why) in enumerate(blocks(page))
        if why is None
    ]


def test_every_block_is_run_or_says_why_not():
    skipped = [(p.name, why) for p in PAGES for _, why in blocks(p) if why is not None]
    assert all(why.strip() for _, why in skipped), skipped
    assert len(run_cases()) >= 6  # the quickstart and the API guide, at least


@pytest.mark.parametrize(
    ("page", "index", "code"),
    run_cases(),
    ids=[f"{p.relative_to(REPO)}#{i}" for p, i, _ in run_cases()],
)
def test_the_example_runs_as_written(
    demo: int, demo_simulator_port: int, tmp_path: Path, page: Path, index: int, code: str
):
    script = code.replace("127.0.0.1:8080", f"127.0.0.1:{demo}").replace(
        "127.0.0.1:9100", f"127.0.0.1:{demo_simulator_port}"
    )
    # curl as written, plus each answer's status on stderr (stdout stays what the
    # reader sees and pipes).
    prelude = (
        "set -e -o pipefail\n"
        f"curl() {{ command curl -w '%{{stderr}}{_STATUS} %{{http_code}}\\n' \"$@\"; }}\n"
    )
    # The venv the suite runs in, as `.venv` beside the reader's clone.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    done = subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}"},
    )
    where = f"{page.relative_to(REPO)} block {index}"
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
    statuses = [int(s) for s in re.findall(rf"{_STATUS} (\d+)", done.stderr)]
    assert statuses, f"{where} made no HTTP request"
    named = {int(n) for n in re.findall(r"\b([45]\d\d)\b", code)}
    unexpected = [s for s in statuses if not 200 <= s < 300 and s not in named]
    assert not unexpected, f"{where}: answers {statuses}\n{done.stdout}"

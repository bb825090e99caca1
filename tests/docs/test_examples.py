"""``examples/``, run as a reader would run them, against ``gateway demo``."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.e2e.processes import REPO

CLIENT = [sys.executable, str(REPO / "examples" / "client.py")]


def test_the_python_client_submits_waits_pages_and_exports(demo: int, tmp_path: Path):
    out = tmp_path / "results.csv"
    done = subprocess.run(
        [*CLIENT, "--gateway", f"http://127.0.0.1:{demo}", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout.splitlines()[0]
    for n in range(1, 5):
        assert f"review-{n}: succeeded" in done.stdout
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["input"] for r in rows] == [f"review-{n}" for n in range(1, 5)]


def test_the_python_client_explains_a_refusal(demo: int, tmp_path: Path):
    done = subprocess.run(
        [*CLIENT, "--gateway", f"http://127.0.0.1:{demo}", "--model", "no-such-model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "submit refused: 422" in done.stderr or "submit refused: 404" in done.stderr, done.stderr

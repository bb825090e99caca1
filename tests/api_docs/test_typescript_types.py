"""TypeScript types generated from /openapi.json with openapi-typescript type-check the
README's request bodies under ``tsc --strict`` (tests/node/readme_bodies.ts), and refuse
the bodies the gateway refuses (its ``@ts-expect-error`` lines)."""

from __future__ import annotations

import json
import shutil
import subprocess

from gateway.api.openapi import openapi_document
from tests.api_docs.conftest import NODE_DIR, NODE_ENV, node_tool


def test_readme_bodies_type_check_against_generated_types(tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(openapi_document()))
    shutil.copy(NODE_DIR / "readme_bodies.ts", tmp_path / "readme_bodies.ts")
    generate = subprocess.run(
        [str(node_tool("openapi-typescript")), str(spec), "-o", str(tmp_path / "gateway.d.ts")],
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    check = subprocess.run(
        [str(node_tool("tsc")), "--strict", "--noEmit", str(tmp_path / "readme_bodies.ts")],
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

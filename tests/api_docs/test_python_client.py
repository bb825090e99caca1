"""A Python client generated from /openapi.json with openapi-python-client works unedited.

The client is generated from the document the demo serves, imported as it is, and used
the way a service would: submit and wait (``Prefer: wait``), page through the results,
export them as CSV and NDJSON, cancel, and read a 422 as a typed ``Problem``.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_docs.conftest import DEMO_KEY

HERE = Path(__file__).resolve().parent
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def client_package(demo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("pyclient")
    spec = work / "openapi.json"
    with urllib.request.urlopen(f"{demo}/openapi.json", timeout=5) as resp:
        spec.write_bytes(resp.read())
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(work / "gateway_client"),
            "--config",
            str(HERE / "openapi-python-client.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # A warning means a piece of the API is missing from the client: as bad as an error.
    assert run.returncode == 0 and "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module("gateway_client")
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m.split(".")[0] == "gateway_client"]:
            del sys.modules[name]


def test_generated_client_runs_a_job_from_submit_to_cancel(client_package, demo):
    m = importlib.import_module("gateway_client.models")
    unset = importlib.import_module("gateway_client.types").UNSET
    submit_job = importlib.import_module("gateway_client.api.jobs.submit_job")
    get_results = importlib.import_module("gateway_client.api.results.get_results")
    export_csv = importlib.import_module("gateway_client.api.results.export_results_csv")
    export_ndjson = importlib.import_module("gateway_client.api.results.export_results_ndjson")
    cancel_job = importlib.import_module("gateway_client.api.jobs.cancel_job")
    client = client_package.AuthenticatedClient(base_url=demo, token=DEMO_KEY)
    names = ["review-1", "review-2", "review-3"]
    body = m.JobCreate(
        model="sentiment",
        inputs=[m.TextInput(name=n, text=f"Great product, number {n}") for n in names],
        metadata=m.JobCreateMetadata.from_dict({"team": "search"}),
    )

    done = submit_job.sync_detailed(client=client, body=body, prefer="wait=30")
    job = done.parsed
    assert done.status_code == 200 and isinstance(job, m.Job), done.content
    assert job.status == m.JobStatus.SUCCEEDED and job.done and job.counts.succeeded == 3
    assert job.finished_at is not None and job.finished_at >= job.created_at  # datetimes
    assert done.headers["Location"] == f"/v1/jobs/{job.id}"

    items, token = [], None
    while True:
        page = get_results.sync(job.id, client=client, page_size=2, page_token=token or unset)
        assert isinstance(page, m.Results), page
        items += page.items
        token = page.next_page_token
        if token is None:
            break
    assert [i.input_ for i in items] == names  # `input` is a builtin: the generator adds _
    assert all(isinstance(i.output, m.ClassificationOutput) for i in items)
    assert {i.output.label for i in items} == {"positive"}

    rows = list(csv.DictReader(io.StringIO(export_csv.sync(job.id, client=client))))
    assert [r["input"] for r in rows] == names and rows[0]["output_type"] == "classification"
    lines = export_ndjson.sync(job.id, client=client).splitlines()
    assert [json.loads(line)["input"] for line in lines] == names

    # New texts: the demo's sentiment model answers texts it has seen from its item cache.
    fresh = m.JobCreate(
        model="sentiment",
        inputs=[m.TextInput(name=n, text=f"Still running, number {n}") for n in names],
    )
    running = submit_job.sync(client=client, body=fresh)
    assert isinstance(running, m.Job) and not running.done
    cancelled = cancel_job.sync(running.id, client=client)
    assert isinstance(cancelled, m.Job) and cancelled.status == m.JobStatus.CANCELLED

    again = cancel_job.sync_detailed(job.id, client=client)
    assert again.status_code == 409 and isinstance(again.parsed, m.Problem)
    assert again.parsed.code == "job_done"

    bad = m.JobCreate(model="sentiment", inputs=[m.TextInput(name="no spaces allowed", text="x")])
    refused = submit_job.sync_detailed(client=client, body=bad)
    problem = refused.parsed
    assert refused.status_code == 422 and isinstance(problem, m.Problem), refused.content
    assert problem.code == "validation_failed"
    assert [e.pointer for e in problem.errors] == ["/inputs/0/name"]

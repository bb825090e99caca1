"""Wood Wide through the whole gateway: job-level outputs in every format, option errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.api.test_jobs_api import problem, wait_done
from tests.conftest import AUTH, Harness


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"c{i}",
            "record": {"age": 20 + i, "plan": ("basic", "pro")[i % 2], "monthly_spend": 9.5 * i},
        }
        for i in range(n)
    ]


@pytest.fixture
async def h(make_gateway) -> Harness:
    return await make_gateway(["woodwide"])


async def finished(h: Harness, model: str, n: int = 3) -> str:
    body = {"model": f"woodwide/{model}", "inputs": rows(n)}
    resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    job_id: str = (await resp.json())["id"]
    await wait_done(h, job_id)
    return job_id


class TestJobOutputsInExports:
    """Factor analysis has only job-level outputs: no export may drop them."""

    async def test_json_csv_and_ndjson_all_carry_the_factors(self, h):
        job_id = await finished(h, "mdl_factors")
        path = f"/v1/jobs/{job_id}/results"
        body = await (await h.client.get(path, headers=AUTH)).json()
        (factors,) = body["job_outputs"]
        assert factors["type"] == "factors" and factors["factors"]

        resp = await h.client.get(f"{path}?format=ndjson", headers=AUTH)
        lines = [json.loads(x) for x in (await resp.text()).splitlines()]
        assert [x["input"] for x in lines[:-1]] == ["c0", "c1", "c2"]
        assert lines[-1] == {"job_outputs": body["job_outputs"]}

        resp = await h.client.get(f"{path}?format=csv", headers=AUTH)
        table = list(csv.DictReader(io.StringIO(await resp.text())))
        assert [r["input"] for r in table] == ["c0", "c1", "c2", ""]
        last = table[-1]
        assert last["status"] == "job_output" and last["output_type"] == "factors"
        assert json.loads(last["output_factors"]) == factors["factors"]

    async def test_a_job_without_job_outputs_exports_items_only(self, h):
        job_id = await finished(h, "mdl_churn")
        path = f"/v1/jobs/{job_id}/results"
        lines = (await (await h.client.get(f"{path}?format=ndjson", headers=AUTH)).text()).split()
        assert [json.loads(x)["input"] for x in lines] == ["c0", "c1", "c2"]
        text = await (await h.client.get(f"{path}?format=csv", headers=AUTH)).text()
        assert [r["input"] for r in csv.DictReader(io.StringIO(text))] == ["c0", "c1", "c2"]


class TestClassification:
    async def test_binary_scores_carry_the_predicted_labels_probability(self, h):
        job_id = await finished(h, "mdl_churn")
        body = await (await h.client.get(f"/v1/jobs/{job_id}/results", headers=AUTH)).json()
        for item in body["items"]:
            out = item["output"]
            assert out["type"] == "classification" and 0.5 <= out["score"] <= 1
            assert out["scores"] == [{"label": out["label"], "score": out["score"]}]


class TestOptionErrors:
    @pytest.mark.parametrize("field", ["dataset_id", "dataset_version_id"])
    async def test_an_unknown_dataset_is_a_422_naming_the_option(self, h, field):
        body = {
            "model": "woodwide/mdl_churn",
            "inputs": [{"name": "r1", "ref": "1"}],
            "options": {"provider": {field: "ds_nope"}},
        }
        resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
        found = await problem(resp, 422, "provider_rejected")
        assert [e["pointer"] for e in found["errors"]] == [f"/options/provider/{field}"]
        listed = await (await h.client.get("/v1/jobs", headers=AUTH)).json()
        assert listed["jobs"] == []

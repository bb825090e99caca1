"""The item cache (issue 17 point 1): identical inputs answered once per TTL and scope.

Over real HTTP, a real Redis and the Modzy simulator, whose own job table says what it was
sent. Two gateway apps sharing one Redis stand for two replicas. Entries are written when a
job finishes: here a read sees the finish (the engine is off in these tests), as a client's
long poll or the engine would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.modzy.simulator import JOBS, fast_simulator
from gateway.config.settings import ModelSettings
from gateway.http.app import create_app
from gateway.jobs.settings import EngineSettings, ItemCacheSettings, PollSettings
from tests.conftest import AUTH, OTHER_AUTH, Harness

pytestmark = pytest.mark.redis

SENTIMENT = "modzy/ed542963de@1.0.1"
UNCACHED = "modzy/c60c8dbd79@0.0.1"


def models(**cache: Any) -> list[ModelSettings]:
    return [
        ModelSettings(
            id="ed542963de",
            version="1.0.1",
            output_type="classification",
            cache=ItemCacheSettings(items=True, **cache),
        ),
        ModelSettings(id="c60c8dbd79", version="0.0.1", output_type="classification"),
    ]


async def gateway(
    make_gateway: Any, redis_url: str, prefix: str, sim: web.Application, **cache: Any
) -> Harness:
    h: Harness = await make_gateway(
        ["modzy"],
        sim_apps={"modzy": sim},
        provider_over={"modzy": {"models": models(**cache)}},
        redis={"url": redis_url, "prefix": prefix},
    )
    return h


def texts(**named: str) -> list[dict[str, str]]:
    return [{"name": n, "text": t} for n, t in named.items()]


async def run(
    h: Harness, inputs: list[dict[str, str]], *, auth: dict[str, str] = AUTH, **options: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit, wait for the end (a read sees it finish), read every result."""
    body: dict[str, Any] = {"model": SENTIMENT, "inputs": inputs}
    if options:
        body["options"] = options
    resp = await h.client.post("/v1/jobs", json=body, headers={**auth, "Prefer": "wait=10"})
    job = await resp.json()
    assert resp.status in (200, 202), job
    while not job["done"]:
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers={**auth, "Prefer": "wait=10"})
        job = await resp.json()
    page = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=auth)).json()
    return job, page["items"]


def sent(sim: web.Application) -> list[list[str]]:
    """The texts of each job the simulator received, in order."""
    return [
        [str(v) for source in job.body["input"]["sources"].values() for v in source.values()]
        for job in sim[JOBS].values()
    ]


def sample(h: Harness, name: str, **labels: str) -> float:
    return h.registry.get_sample_value(name, labels) or 0.0


async def test_a_repeated_input_costs_the_provider_nothing_on_any_replica(
    make_gateway, aiohttp_client, redis_url, redis_client
):
    sim = fast_simulator()
    one = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    # A second replica: the same configuration (the same provider account), its own process.
    registry = CollectorRegistry()
    two = Harness(
        client=await aiohttp_client(create_app(one.settings, registry=registry)),
        app=one.app,
        settings=one.settings,
        registry=registry,
    )
    first, items = await run(one, texts(a="Great product", b="Awful support"))
    assert first["status"] == "succeeded" and "cached" not in items[0]
    assert len(sim[JOBS]) == 1

    # The same texts under other names, on the other replica: answered at submit.
    again, cached = await run(two, texts(x="Great product", y="Awful support"))
    assert len(sim[JOBS]) == 1  # the provider saw nothing
    assert (again["status"], again["done"], again["counts"]["succeeded"]) == ("succeeded", True, 2)
    assert [i["input"] for i in cached] == ["x", "y"]
    assert all(i["cached"] is True for i in cached)
    assert [i["output"] for i in cached] == [i["output"] for i in items]
    assert sample(two, "gateway_item_cache_requests_total", provider="modzy", result="hit") == 2


async def test_a_partly_cached_job_sends_only_the_new_inputs_and_answers_all_in_order(
    make_gateway, redis_url, redis_client
):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    await run(h, texts(a="Great product", b="Awful support"))
    job, items = await run(
        h, texts(n1="Brand new text", a2="Great product", n2="Another new one", b2="Awful support")
    )
    assert sent(sim)[-1] == ["Brand new text", "Another new one"]
    assert [i["input"] for i in items] == ["n1", "a2", "n2", "b2"]
    assert [i.get("cached", False) for i in items] == [False, True, False, True]
    assert all(i["status"] == "succeeded" for i in items)
    assert job["counts"] == {"total": 4, "succeeded": 4, "failed": 0, "pending": 0, "cancelled": 0}
    # The new inputs' answers were kept when that job finished: all four hit now.
    await run(h, texts(p="Brand new text", q="Another new one"))
    assert len(sim[JOBS]) == 2


async def test_entries_are_a_tenants_own_unless_the_model_is_global(
    make_gateway, redis_url, redis_client
):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    await run(h, texts(a="Shared text"))
    await run(h, texts(a="Shared text"), auth=OTHER_AUTH)
    assert len(sim[JOBS]) == 2  # tenant "other" paid for its own

    shared = fast_simulator()
    g = await gateway(
        make_gateway, redis_url, redis_client.test_prefix + "g", shared, scope="global"
    )
    await run(g, texts(a="Shared text"))
    _, items = await run(g, texts(a="Shared text"), auth=OTHER_AUTH)
    assert len(shared[JOBS]) == 1 and items[0]["cached"] is True


async def test_an_entry_lives_its_ttl(make_gateway, redis_url, redis_client):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim, ttl_seconds=1)
    await run(h, texts(a="Short-lived"))
    await run(h, texts(a="Short-lived"))
    assert len(sim[JOBS]) == 1
    await asyncio.sleep(1.2)
    await run(h, texts(a="Short-lived"))
    assert len(sim[JOBS]) == 2


async def test_bypass_asks_the_provider_and_refreshes_the_entry_off_does_neither(
    make_gateway, redis_url, redis_client
):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    await run(h, texts(a="Fresh please"))
    _, items = await run(h, texts(a="Fresh please"), cache="bypass")
    assert len(sim[JOBS]) == 2 and "cached" not in items[0]
    assert sample(h, "gateway_item_cache_writes_total", provider="modzy") == 2  # refreshed
    _, items = await run(h, texts(a="Fresh please"), cache="off")
    assert len(sim[JOBS]) == 3 and "cached" not in items[0]
    _, items = await run(h, texts(b="Never kept"), cache="off")
    await run(h, texts(b="Never kept"))
    assert len(sim[JOBS]) == 5  # "off" wrote nothing to find


async def test_a_model_without_an_item_cache_is_never_cached(make_gateway, redis_url, redis_client):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    for _ in range(2):
        body = {
            "model": UNCACHED,
            "inputs": [{"name": "i", "data": "aW1n", "content_type": "image/png"}],
        }
        resp = await h.client.post("/v1/jobs", json=body, headers={**AUTH, "Prefer": "wait=10"})
        assert resp.status in (200, 202)
    assert len(sim[JOBS]) == 2
    assert sample(h, "gateway_item_cache_requests_total", provider="modzy", result="hit") == 0


async def test_only_succeeded_answers_are_kept(make_gateway, redis_url, redis_client):
    """The simulator fails an input whose text says "fail": asking again may succeed."""
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    _, items = await run(h, texts(ok="Fine text", bad="please fail"))
    assert [i["status"] for i in items] == ["succeeded", "failed"]
    await run(h, texts(ok="Fine text", bad="please fail"))
    assert sent(sim)[-1] == ["please fail"]


async def test_the_engine_keeps_the_answers_of_a_job_nobody_read(
    make_gateway, redis_url, redis_client
):
    sim = fast_simulator()
    h: Harness = await make_gateway(
        ["modzy"],
        sim_apps={"modzy": sim},
        provider_over={"modzy": {"models": models(), "poll": PollSettings(initial_seconds=0.1)}},
        redis={"url": redis_url, "prefix": redis_client.test_prefix},
        engine=EngineSettings(),
    )
    body = {"model": SENTIMENT, "inputs": texts(a="Nobody reads me")}
    assert (await h.client.post("/v1/jobs", json=body, headers=AUTH)).status == 202
    deadline = asyncio.get_running_loop().time() + 10
    while sample(h, "gateway_item_cache_writes_total", provider="modzy") < 1:
        assert asyncio.get_running_loop().time() < deadline, "the engine kept nothing"
        await asyncio.sleep(0.1)
    _, items = await run(h, texts(b="Nobody reads me"))
    assert len(sim[JOBS]) == 1 and items[0]["cached"] is True
    # Written once, where the finish was seen (not again by the engine's finalize).
    assert sample(h, "gateway_item_cache_writes_total", provider="modzy") == 1


async def test_an_input_repeated_within_a_job_is_sent_once_and_answered_for_each(
    make_gateway, redis_url, redis_client
):
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    job, items = await run(h, texts(a="Same text", b="Other text", c="Same text", d="Same text"))
    assert sent(sim) == [["Same text", "Other text"]]
    assert [i["input"] for i in items] == ["a", "b", "c", "d"]
    assert [i.get("cached", False) for i in items] == [False, False, True, True]
    assert items[2]["output"] == items[3]["output"] == items[0]["output"]
    assert job["counts"] == {"total": 4, "succeeded": 4, "failed": 0, "pending": 0, "cancelled": 0}
    assert sample(h, "gateway_item_cache_requests_total", provider="modzy", result="repeat") == 2
    assert sample(h, "gateway_item_cache_requests_total", provider="modzy", result="miss") == 2


async def test_a_repeat_ends_as_the_input_it_repeats_when_some_inputs_fail(
    make_gateway, redis_url, redis_client
):
    """Counts of a job whose inputs ended differently: its repeats are counted from the
    results of the inputs they repeat, read once when the job finished."""
    sim = fast_simulator()
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix, sim)
    job, items = await run(
        h, texts(ok="Fine text", bad="please fail", ok2="Fine text", bad2="please fail")
    )
    assert sent(sim) == [["Fine text", "please fail"]]
    assert [i["status"] for i in items] == ["succeeded", "failed", "succeeded", "failed"]
    assert [i.get("cached", False) for i in items] == [False, False, True, False]
    assert (job["status"], job["counts"]["succeeded"], job["counts"]["failed"]) == (
        "partially_succeeded",
        2,
        2,
    )
    stored = await (await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
    assert stored["counts"] == job["counts"]


async def test_a_model_without_an_item_cache_sends_every_repeat(
    make_gateway, redis_url, redis_client
):
    """Repeats are sent once only where answers are reused at all: a model that may
    answer the same input differently twice gets each of them."""
    sim = fast_simulator()
    h: Harness = await make_gateway(
        ["modzy"],
        sim_apps={"modzy": sim},
        provider_over={"modzy": {"models": [ModelSettings(id="ed542963de", version="1.0.1")]}},
        redis={"url": redis_url, "prefix": redis_client.test_prefix},
    )
    await run(h, texts(a="Same text", b="Same text"))
    assert sent(sim) == [["Same text", "Same text"]]


async def test_an_alias_may_have_an_item_cache_of_its_own(make_gateway, redis_url, redis_client):
    """The model has none; the alias over it has one (with its own TTL): submits through
    the alias reuse answers, submits naming the model do not."""
    sim = fast_simulator()
    h: Harness = await make_gateway(
        ["modzy"],
        sim_apps={"modzy": sim},
        provider_over={"modzy": {"models": [ModelSettings(id="ed542963de", version="1.0.1")]}},
        redis={"url": redis_url, "prefix": redis_client.test_prefix},
        aliases={"sentiment": {"targets": SENTIMENT, "cache": {"items": True, "ttl_seconds": 1}}},
    )

    async def through(model: str, text: str) -> list[dict[str, Any]]:
        body = {"model": model, "inputs": texts(a=text)}
        resp = await h.client.post("/v1/jobs", json=body, headers={**AUTH, "Prefer": "wait=10"})
        job = await resp.json()
        while not job["done"]:
            resp = await h.client.get(
                f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"}
            )
            job = await resp.json()
        page = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
        return list(page["items"])

    await through("sentiment", "Aliased text")
    items = await through("sentiment", "Aliased text")
    assert len(sim[JOBS]) == 1 and items[0]["cached"] is True
    await through(SENTIMENT, "Aliased text")  # the model named directly: no cache
    assert len(sim[JOBS]) == 2
    await asyncio.sleep(1.2)  # the alias's TTL, not the model's default day
    items = await through("sentiment", "Aliased text")
    assert len(sim[JOBS]) == 3 and "cached" not in items[0]

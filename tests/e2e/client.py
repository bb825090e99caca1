"""A client of several gateway replicas: one aiohttp session, any replica per call."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

AUTH = {"Authorization": "Bearer demo-key"}
OTHER = {"Authorization": "Bearer demo-key-other"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    body: Any


@dataclass
class Api:
    """The replicas seen by one client; ``replica`` picks which one answers."""

    session: aiohttp.ClientSession
    urls: list[str]

    async def call(
        self,
        method: str,
        replica: int,
        path: str,
        *,
        key: dict[str, str] = AUTH,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        url = self.urls[replica % len(self.urls)] + path
        async with self.session.request(
            method, url, json=body, headers={**key, **(headers or {})}
        ) as resp:
            text = await resp.text()
            try:
                data: Any = json.loads(text) if text else None
            except ValueError:
                data = text
            return Answer(resp.status, resp.headers, resp.content_type, data)

    async def submit(self, replica: int, n: int = 1, **kw: Any) -> Answer:
        return await self.call("POST", replica, "/v1/jobs", body=job_body(n), **kw)

    async def ready(self, replicas: int, seconds: float = 5.0) -> None:
        """Wait until every replica's /readyz is 200. After Redis comes back, a replica
        refuses Redis calls until its gate's background PING is answered (moments later;
        ``gateway.state.redis_gate``), and /readyz shows when it has."""
        deadline = time.monotonic() + seconds
        for r in range(replicas):
            while (await self.call("GET", r, "/readyz")).status != 200:
                assert time.monotonic() < deadline, f"replica {r} did not see Redis back"
                await asyncio.sleep(0.02)

    async def finished_job(self, replica: int = 0, n: int = 1) -> dict[str, Any]:
        answer = await self.submit(replica, n, headers={"Prefer": "wait=15"})
        assert answer.status == 200 and answer.body["status"] == "succeeded", answer
        job: dict[str, Any] = answer.body
        return job


def job_body(n: int, tag: str = "") -> dict[str, Any]:
    return {
        "model": "sentiment",
        "inputs": [{"name": f"review-{i}", "text": f"Great product {tag}{i}"} for i in range(n)],
        "metadata": {"suite": "replicas"},
    }


def random_job_id() -> str:
    return "job_" + secrets.token_urlsafe(16)


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.content_type == "application/problem+json", answer
    assert answer.body["code"] == code, answer
    assert "Traceback" not in json.dumps(answer.body)

"""A client of the inference jobs gateway, done properly, in one file.

    python examples/client.py                      # against `make demo` on 127.0.0.1:8080
    python examples/client.py --gateway URL --key KEY --model sentiment --out results.csv

What a service calling the gateway should do, and this script does:

* submit with an ``Idempotency-Key`` it makes once per job and reuses on every retry, so a
  retry after a timeout or a lost answer never starts a second job;
* wait with ``Prefer: wait=N`` (a long poll: the answer comes as soon as the job is done)
  rather than polling in a loop;
* honour ``Retry-After`` on 429 and 503, and back off on network errors;
* page through results with ``page_token`` until there is none;
* export the results as CSV.

Only ``httpx`` is needed (``pip install httpx``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

RETRYABLE = {429, 502, 503, 504}


def say(line: str) -> None:
    print(f"  {line}", file=sys.stderr)


def call(
    client: httpx.Client, method: str, path: str, *, attempts: int = 6, **kw: Any
) -> httpx.Response:
    """One request, retried on 429/5xx (after ``Retry-After``) and on network errors."""
    for attempt in range(attempts):
        try:
            response = client.request(method, path, **kw)
        except httpx.TransportError as exc:
            if attempt == attempts - 1:
                raise
            wait = min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
            print(
                f"  {method} {path}: {type(exc).__name__}, again in {wait:.1f} s", file=sys.stderr
            )
        else:
            if response.status_code not in RETRYABLE or attempt == attempts - 1:
                return response
            wait = float(response.headers.get("Retry-After", 2 ** (attempt + 1)))
            print(
                f"  {method} {path}: {response.status_code}, again in {wait:.0f} s", file=sys.stderr
            )
        time.sleep(wait)
    raise AssertionError("unreachable")


def problem(response: httpx.Response) -> str:
    """The problem+json answer in one line: code, title, what to fix."""
    body = response.json()
    fields = "; ".join(f"{e['pointer']}: {e['detail']}" for e in body.get("errors", []))
    return f"{response.status_code} {body.get('code')}: {body.get('detail')} {fields}".strip()


def submit(client: httpx.Client, model: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    key = str(uuid.uuid4())  # one per job, the same on every retry of it
    response = call(
        client,
        "POST",
        "/v1/jobs",
        json={"model": model, "inputs": inputs},
        headers={"Idempotency-Key": key, "Prefer": "wait=10"},
    )
    if response.status_code not in (200, 202):
        raise SystemExit(f"submit refused: {problem(response)}")
    job: dict[str, Any] = response.json()
    return job


def wait_done(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    while not job["done"]:
        response = call(client, "GET", f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=30"})
        response.raise_for_status()
        job = response.json()
        print(f"  {job['id']}: {job['status']} {job['counts']}", file=sys.stderr)
    return job


def results(client: httpx.Client, job_id: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if token:
            params["page_token"] = token
        response = call(client, "GET", f"/v1/jobs/{job_id}/results", params=params)
        response.raise_for_status()
        page = response.json()
        yield from page["items"]
        token = page["next_page_token"]
        if token is None:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="the gateway's URL")
    parser.add_argument("--key", default="demo-key", help="an API key (or a JWT)")
    parser.add_argument("--model", default="sentiment", help="a model or alias (GET /v1/models)")
    parser.add_argument("--out", default="results.csv", help="where to write the CSV export")
    args = parser.parse_args(argv)

    texts = ["Great product, I love it", "Terrible support", "It arrived on time", "Meh"]
    inputs = [{"name": f"review-{i + 1}", "text": t} for i, t in enumerate(texts)]
    headers = {"Authorization": f"Bearer {args.key}"}
    # The read timeout covers a long poll (wait=30) with room to spare.
    timeout = httpx.Timeout(10.0, read=45.0)
    with httpx.Client(base_url=args.gateway, headers=headers, timeout=timeout) as client:
        job = wait_done(client, submit(client, args.model, inputs))
        print(f"job {job['id']}: {job['status']}")
        for item in results(client, job["id"], page_size=2):
            output = item.get("output") or {}
            print(f"  {item['input']}: {item['status']} {output.get('label', '')}")
        export = call(client, "GET", f"/v1/jobs/{job['id']}/results", params={"format": "csv"})
        export.raise_for_status()
        Path(args.out).write_text(export.text, encoding="utf-8")
        print(f"CSV export: {args.out} ({len(export.text.splitlines()) - 1} rows)")
    return 0 if job["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())

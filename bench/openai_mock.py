"""An OpenAI-compatible mock for scenario 6: ``POST /v1/chat/completions`` answers at once.

The upstream LiteLLM's proxy forwards to, measured direct too, the way the Modzy simulator
is for our gateway.

    python -m bench.openai_mock --port 9302
"""

from __future__ import annotations

import argparse
import json
import time

from aiohttp import web

MOCK_KEY = "sk-bench-mock-upstream"
REQUEST = {"model": "mock", "messages": [{"role": "user", "content": "Great product, I love it"}]}


async def completions(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {MOCK_KEY}":
        return web.json_response({"error": {"message": "bad key"}}, status=401)
    body = await request.json()
    answer = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "mock"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "positive"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 6, "completion_tokens": 1, "total_tokens": 7},
    }
    return web.Response(text=json.dumps(answer), content_type="application/json")


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "mock", "object": "model"}]})


def mock_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(mock_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()

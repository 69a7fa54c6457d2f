"""A minimal OpenAI-compatible model server, run as its own process by tests of the local tier.

    python tests/local_model_server.py PORT [--delay S] [--die-after N] [--chunk-delay S]

It is not the project's simulator: it answers `/v1/models` and `/v1/chat/completions`
the way a local server (vLLM, llama.cpp's server, Ollama) does, after `--delay`
seconds (slow local inference), and with `--die-after N` the process exits in the
middle of its N-th answer (headers and half a body sent), as a server killed by the
out-of-memory killer would. A request with `"stream": true` is answered as server-sent
events: the first chunk after `--delay`, then one chunk per `--chunk-delay`, usage in the
last one, then `[DONE]`; with `--die-after N` the N-th stream stops after its second chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    args = parser.parse_args()
    served = 0

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "local-7b", "object": "model"}]})

    async def streamed(request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        pieces = ["def transform(grid):\n", "    return ", "grid\n"]
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(args.chunk_delay)
            chunk = {"model": model, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if args.die_after and served >= args.die_after and number == 1:
                os._exit(1)
        usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
        await response.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def completions(request: web.Request) -> web.StreamResponse:
        nonlocal served
        body = await request.json()
        served += 1
        await asyncio.sleep(args.delay)
        if body.get("stream"):
            return await streamed(request, body.get("model", "local-7b"))
        answer = json.dumps({
            "id": f"local-{served}", "object": "chat.completion", "model": body.get("model", "local-7b"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "def transform(grid):\n    return grid\n"}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
        }).encode()
        if args.die_after and served >= args.die_after:
            response = web.StreamResponse(headers={"content-type": "application/json",
                                                   "content-length": str(len(answer))})
            await response.prepare(request)
            await response.write(answer[: len(answer) // 2])
            os._exit(1)
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", completions)
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *_: print("ready", flush=True))


if __name__ == "__main__":
    main()

"""An OpenAI-compatible HTTP surface over a running Orchestrator.

Any OpenAI client can point its base URL here. `model` may be "auto" (route by
complexity), a tier name ("tier_2") or a model name (an explicit override). Extra
routing inputs ride in an `x_orchestrator` object (task, stagnation, sample_index,
cache, allow_similar, metadata); the response carries the routing decision and cost
in `x_orchestrator` too. Errors use OpenAI's error body with the orchestrator's
codes: 402 BUDGET_EXCEEDED, 429 RATE_LIMIT_EXCEEDED, 503 STRATEGY_UNAVAILABLE.

Binds 127.0.0.1 by default; bound anywhere else it refuses to start without a
bearer token, and then checks it on every request but /health.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from actors.errors import OrchestratorError
from actors.messages import Result
from actors.money import NANODOLLARS_PER_DOLLAR
from orchestrator.api import Orchestrator
from orchestrator.binding import is_loopback
from orchestrator.metrics import render_metrics
from orchestrator.workload import request_from_dict

ORCH_KEY: web.AppKey[Orchestrator] = web.AppKey("orchestrator", Orchestrator)
TOKEN_KEY: web.AppKey[str | None] = web.AppKey("token", str)


class InsecureBinding(OrchestratorError):
    code = "INSECURE_BINDING"
    status = 400


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise InsecureBinding(
            f"refusing to listen on {host} without a bearer token: set ORCHESTRATOR_SERVER_TOKEN "
            "(or bind 127.0.0.1)"
        )


def build_app(orch: Orchestrator, token: str | None = None) -> web.Application:
    app = web.Application(middlewares=[_auth], client_max_size=8 * 1024 * 1024)
    app[ORCH_KEY] = orch
    app[TOKEN_KEY] = token
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", _health)
    return app


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.app[TOKEN_KEY]
    if token and request.path != "/health":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "AUTHENTICATION_REQUIRED", "missing or wrong bearer token")
    return await handler(request)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": code.lower(), "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def _chat(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _error(400, "INVALID_REQUEST", f"body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "INVALID_REQUEST", "body must be a JSON object")
    if body.get("stream"):
        return _error(400, "INVALID_REQUEST", "stream=true is not supported")
    if int(body.get("n", 1) or 1) != 1:
        return _error(400, "INVALID_REQUEST", "n must be 1 (use sample_index in x_orchestrator)")
    spec: dict[str, Any] = dict(body.get("x_orchestrator") or {})
    if not isinstance(spec, dict):
        return _error(400, "INVALID_REQUEST", "x_orchestrator must be an object")
    for field in ("messages", "max_tokens", "temperature", "top_p"):
        if body.get(field) is not None:
            spec[field] = body[field]
    if body.get("max_completion_tokens") is not None:
        spec["max_tokens"] = body["max_completion_tokens"]
    stop = body.get("stop")
    if stop is not None:
        spec["stop"] = [stop] if isinstance(stop, str) else stop
    model = body.get("model") or "auto"
    tiers = {t.name for t in orch.engine.router.tiers}
    if model != "auto":
        spec["tier" if model in tiers else "model"] = model
    try:
        result = await orch.generate(request_from_dict(spec, "request"))
    except OrchestratorError as exc:
        return _error(exc.status, exc.code, str(exc))
    return web.Response(body=orjson.dumps(_completion(result)), content_type="application/json")


def _completion(result: Result) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": result.input_tokens,
            "completion_tokens": result.output_tokens,
            "total_tokens": result.input_tokens + result.output_tokens,
        },
        "x_orchestrator": {
            "tier": result.tier,
            "provider": result.provider,
            "cost_usd": result.cost_nd / NANODOLLARS_PER_DOLLAR,
            "cost_nd": result.cost_nd,
            "cached": result.cached,
            "similarity": result.similarity,
            "score": result.score,
            "level": result.level,
            "confidence": result.confidence,
            "reasons": list(result.reasons),
            "attempts": len(result.attempts),
        },
    }


async def _models(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    data = [{"id": "auto", "object": "model", "owned_by": "orchestrator"}]
    for tier in orch.engine.router.tiers:
        data.append({"id": tier.name, "object": "model", "owned_by": "orchestrator", "label": tier.label})
    for provider in orch.engine.providers:
        data.append({"id": provider.model, "object": "model", "owned_by": provider.name})
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")


async def _metrics(request: web.Request) -> web.Response:
    text = await render_metrics(request.app[ORCH_KEY])
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})


async def _health(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    health = orch.health()
    ok, reason = orch.ready()
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps({"status": "ok" if ok else "unavailable", "reason": reason, "actors": health}),
        content_type="application/json",
    )

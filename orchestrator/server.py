"""An OpenAI-compatible HTTP surface over a running Orchestrator.

Any OpenAI client (the `openai` package, OpenEvolve's `api_base`) can point its base
URL here. Routes: `POST /v1/chat/completions` (streaming and `n` included, see
`openai_wire`), `GET /v1/models`, `POST /v1/feedback`, `GET /v1/budget`, `/metrics`
(Prometheus text) and `/health`. Every error, 404 and 413 included, is OpenAI's
error object; 402 and 400 carry `x-should-retry: false` (retrying cannot help), 429
carries `Retry-After`. The response's `model` and `x-orchestrator-*` headers always
say what answered. A client that disconnects cancels its request's workflow: no
further retries or fallbacks, and its reservation is released or settled by the
attempt's rules (docs/LEDGER.md).

Binding: any loopback address (127.0.0.0/8, ::1, localhost) needs no token; bound
anywhere else the server refuses to start without ORCHESTRATOR_SERVER_TOKEN, then
requires `Authorization: Bearer <token>` (scheme in any case) on every route but
/health.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import MutableMapping
from typing import Any

import anyio
import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from actors.errors import ConfigError, InvalidRequest, OrchestratorError, RateLimitExceeded, StrategyUnavailable
from actors.messages import Result
from orchestrator.api import Orchestrator
from orchestrator.binding import is_loopback
from orchestrator.metrics import render_metrics
from orchestrator.openai_wire import completion, error_body, include_usage, requests_from_body, stream_chunks

ORCH_KEY: web.AppKey[Orchestrator] = web.AppKey("orchestrator", Orchestrator)
TOKEN_KEY: web.AppKey[str | None] = web.AppKey("token", str)
TIERS_KEY: web.AppKey[frozenset[str]] = web.AppKey("tiers", frozenset)
FIRST_TOKEN_KEY: web.AppKey[float | None] = web.AppKey("first_token_s", float)
MAX_BODY = 12 * 1024 * 1024
PARSE_IN_THREAD = 256 * 1024
"""Bodies larger than this are parsed and validated in a worker thread, off the event loop."""
NO_RETRY = frozenset({400, 401, 402, 404, 409, 413, 415})
SUBSTITUTE_HEADER = "x-orchestrator-allow-substitute"


class InsecureBinding(ConfigError):
    code = "INSECURE_BINDING"


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise InsecureBinding(
            f"refusing to listen on {host} without a bearer token: set ORCHESTRATOR_SERVER_TOKEN "
            "(or bind a loopback address such as 127.0.0.1)"
        )


class _ClientErrorsInOneLine(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A request the HTTP parser refuses (a 9 KB URL, a bad header) is the client's error, answered 400: one line
    naming it, not a traceback per request for anyone to fill the server's log with. Other errors keep theirs."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError):
            kwargs["exc_info"] = None
            msg = f"{msg}: malformed HTTP request ({error.code}): {str(error.message)[:120]}"
        return msg, kwargs


def app_runner(app: web.Application, shutdown_timeout: float = 60.0) -> web.AppRunner:
    """How `serve` runs the app: no access log, a handler cancelled when its client goes, malformed requests
    logged in one line (logger `orchestrator.server`)."""
    return web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=shutdown_timeout,
                         logger=_ClientErrorsInOneLine(logging.getLogger("orchestrator.server"), {}))


def build_app(orch: Orchestrator, token: str | None = None, first_token_s: float | None = None) -> web.Application:
    """The app; `first_token_s` is how long a streaming client waits for one provider before the next.

    Without a token there is nothing to check, so the `_auth` layer is left out rather than run for every request.
    """
    app = web.Application(middlewares=[_errors, _auth] if token else [_errors], client_max_size=MAX_BODY)
    app[ORCH_KEY] = orch
    app[TOKEN_KEY] = token
    app[TIERS_KEY] = frozenset(t.name for t in orch.engine.router.tiers)
    app[FIRST_TOKEN_KEY] = first_token_s
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/feedback", _feedback)
    app.router.add_get("/v1/budget", _budget)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", _health)
    return app


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    extra = dict(headers or {})
    if status in NO_RETRY:
        extra["x-should-retry"] = "false"
    return web.Response(status=status, body=orjson.dumps(error_body(status, code, message)),
                        content_type="application/json", headers=extra)


def _failure(exc: OrchestratorError) -> web.Response:
    headers = {}
    if isinstance(exc, (RateLimitExceeded, StrategyUnavailable)) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return _error(exc.status, exc.code, str(exc), headers)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413) in OpenAI's error shape, like every other error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.upper().replace(" ", "_"), exc.text or exc.reason)


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.app[TOKEN_KEY]
    if token and request.path != "/health":
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _error(401, "AUTHENTICATION_REQUIRED", "missing or wrong bearer token")
    return await handler(request)


async def _json_body(request: web.Request) -> Any:
    if request.content_type not in ("application/json", "application/octet-stream") and request.can_read_body:
        raise InvalidRequest(f"the body must be JSON (Content-Type: application/json), got {request.content_type}")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from None


async def _chat(request: web.Request) -> web.StreamResponse:
    orch = request.app[ORCH_KEY]
    tiers = request.app[TIERS_KEY]
    allow = request.headers.get(SUBSTITUTE_HEADER, "").lower() in ("1", "true", "yes")
    try:
        raw = await request.read()
        if request.content_type not in ("application/json", "application/octet-stream") and raw:
            raise InvalidRequest(f"the body must be JSON (Content-Type: application/json), got {request.content_type}")

        def parse() -> tuple[list[Any], bool, bool]:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"the body is not JSON: {exc}") from None
            wanted, stream = requests_from_body(body, tiers, allow, request.app[FIRST_TOKEN_KEY])
            return wanted, stream, include_usage(body)

        if len(raw) > PARSE_IN_THREAD:
            wanted, stream, usage = await anyio.to_thread.run_sync(parse)
        else:
            wanted, stream, usage = parse()
        results = await _generate_all(orch, wanted)
    except OrchestratorError as exc:
        return _failure(exc)
    headers = _answer_headers(results)
    if not stream:
        return web.Response(body=orjson.dumps(completion(results, wanted[0].request_id)),
                            content_type="application/json", headers=headers)
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for chunk in stream_chunks(results, wanted[0].request_id, usage):
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _generate_all(orch: Orchestrator, wanted: list[Any]) -> list[Result]:
    if len(wanted) == 1:
        return [await orch.generate(wanted[0])]
    results: list[Result | None] = [None] * len(wanted)

    async def one(index: int) -> None:
        results[index] = await orch.generate(wanted[index])

    async with anyio.create_task_group() as tg:
        for index in range(len(wanted)):
            tg.start_soon(one, index)
    return [r for r in results if r is not None]


def _answer_headers(results: list[Result]) -> dict[str, str]:
    first = results[0]
    return {
        "x-orchestrator-tier": first.tier,
        "x-orchestrator-model": first.model,
        "x-orchestrator-provider": first.provider,
        "x-orchestrator-cost-nd": str(sum(r.cost_nd for r in results)),
        "x-orchestrator-cached": "true" if all(r.cached for r in results) else "false",
    }


async def _models(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    created = int(time.time())
    data = [{"id": "auto", "object": "model", "created": created, "owned_by": "orchestrator"}]
    for tier in orch.engine.router.tiers:
        data.append({"id": tier.name, "object": "model", "created": created, "owned_by": "orchestrator",
                     "label": tier.label})
    for provider in orch.engine.providers:
        data.append({"id": provider.model, "object": "model", "created": created, "owned_by": provider.name})
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")


async def _feedback(request: web.Request) -> web.Response:
    """`{"request_id": "...", "score": 0.8}`: the caller's verdict on a result, for routing that learns."""
    try:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
            raise InvalidRequest("feedback needs a string request_id and a numeric score")
        score = body.get("score")
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= score <= 1.0:
            raise InvalidRequest(f"score must be a number from 0 to 1, got {score!r:.40}")
        request.app[ORCH_KEY].feedback(body["request_id"], float(score))
    except OrchestratorError as exc:
        return _failure(exc)
    return web.Response(body=orjson.dumps({"ok": True}), content_type="application/json")


async def _budget(request: web.Request) -> web.Response:
    try:
        status = await request.app[ORCH_KEY].budget()
    except OrchestratorError as exc:
        return _failure(exc)
    body = {
        "limit_nd": status.limit_nd, "settled_nd": status.settled_nd, "reserved_nd": status.reserved_nd,
        "unreconciled_nd": status.unreconciled_nd, "remaining_nd": status.remaining_nd,
        "outstanding": status.outstanding,
        "limits": [{"scope": l.scope, "limit_nd": l.limit_nd, "settled_nd": l.settled_nd,
                    "reserved_nd": l.reserved_nd, "remaining_nd": l.remaining_nd} for l in status.limits],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _metrics(request: web.Request) -> web.Response:
    try:
        text = await render_metrics(request.app[ORCH_KEY])
    except OrchestratorError as exc:
        return _failure(exc)
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

"""The simulated provider: a real aiohttp server on loopback, with faults on demand.

It stands in for every model provider in the default configuration, in tests and in
benchmarks, speaking the OpenAI-compatible, Anthropic and Gemini wire formats. Faults
are decided per request by the rules in its settings (see `FaultRule`), replaceable
at run time through POST /_sim/faults, and counted in GET /_sim/stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from actors.errors import ConfigError
from orchestrator.binding import is_loopback
from orchestrator.simulator import content, formats
from orchestrator.simulator.settings import FaultRule, SimulatorSettings, fault_from_node
from orchestrator.yamlnode import Node


class _State:
    """Mutable run-time state of one server: its fault rules, their counters, stats."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.rng = random.Random(settings.seed)
        self.faults: list[FaultRule] = list(settings.faults)
        self.remaining: dict[int, int] = {}
        self.stats: Counter[str] = Counter()
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.remaining = {i: r.count for i, r in enumerate(self.faults) if r.count is not None}

    def replace_faults(self, faults: list[FaultRule]) -> None:
        self.faults = faults
        self.started = time.monotonic()
        self._reset_counts()

    def pick_fault(self, ask: formats.Ask) -> FaultRule | None:
        age = time.monotonic() - self.started
        for index, rule in enumerate(self.faults):
            if rule.model is not None and rule.model != ask.model:
                continue
            if rule.route is not None and rule.route != ask.route:
                continue
            if rule.schedule and not any(start <= age < end for start, end in rule.schedule):
                continue
            if index in self.remaining and self.remaining[index] <= 0:
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            if index in self.remaining:
                self.remaining[index] -= 1
            return rule
        return None


STATE_KEY: web.AppKey[_State] = web.AppKey("state", _State)


def build_app(settings: SimulatorSettings) -> web.Application:
    app = web.Application(middlewares=[_bearer], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = _State(settings)
    app.router.add_post("/v1/chat/completions", _openai)
    app.router.add_post("/v1/messages", _anthropic)
    app.router.add_post("/v1beta/models/{model_action}", _gemini)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/faults", _set_faults)
    app.router.add_post("/_sim/reset", _reset)
    return app


@web.middleware
async def _bearer(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.app[STATE_KEY].settings.bearer_token
    if token and request.path.startswith("/_sim/") and request.headers.get("Authorization") != f"Bearer {token}":
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    return await handler(request)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise formats.BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise formats.BadRequest("body must be a JSON object")
    return body


async def _openai(request: web.Request) -> web.StreamResponse:
    return await _answer(request, lambda body: formats.parse_openai(body, request.headers), "openai")


async def _anthropic(request: web.Request) -> web.StreamResponse:
    return await _answer(request, lambda body: formats.parse_anthropic(body, request.headers), "anthropic")


async def _gemini(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["model_action"].partition(":")
    if action != "generateContent":
        return web.json_response({"error": {"code": 404, "message": "unknown method", "status": "NOT_FOUND"}}, status=404)
    return await _answer(request, lambda body: formats.parse_gemini(model, body, request.headers), "gemini")


def _reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


async def _answer(request: web.Request, parse: Any, route: str) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    settings = state.settings
    try:
        ask = parse(await _json(request))
    except (formats.BadRequest, ValueError, TypeError) as exc:
        state.stats[f"{route}:bad_request"] += 1
        return _reply(400, formats.error(route, "invalid", 400) | {"detail": str(exc)})
    state.stats[f"{route}:{ask.model}:requests"] += 1
    if settings.required_api_key and ask.api_key != settings.required_api_key:
        state.stats[f"{route}:{ask.model}:auth"] += 1
        return _reply(401, formats.error(route, "auth", 401))
    rule = state.pick_fault(ask)
    kind = rule.kind if rule else "ok"
    state.stats[f"{route}:{ask.model}:{kind}"] += 1
    prompt = content.prompt_tokens(ask.messages)
    window = settings.context_windows.get(ask.model, settings.default_context_window)
    if kind == "context_length" or prompt + ask.max_tokens > window:
        return _reply(400, formats.context_error(ask, prompt, min(window, prompt)))
    if rule is not None and kind == "rate_limit":
        headers = {} if rule.retry_after is None else {"Retry-After": f"{rule.retry_after:g}"}
        return _reply(429, formats.error(route, "rate_limit", 429), headers)
    if rule is not None and kind == "server_error":
        status = rule.status or 500
        return _reply(status, formats.error(route, "server_error", status))
    if kind == "auth":
        return _reply(401, formats.error(route, "auth", 401))
    if kind == "hang":
        await asyncio.sleep(settings.hang_s)
    if kind == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    text = settings.recorded.answer(ask.messages, ask.model) if settings.recorded is not None else None
    if settings.recorded is not None:
        state.stats[f"{route}:{ask.model}:{'recorded' if text is not None else 'recorded_miss'}"] += 1
    if text is None:
        text = content.completion_text(content.digest(settings.seed, ask.model, ask.messages, ask.params), ask.messages, ask.model)
    if kind == "ignore_max_tokens":
        text = (text * (2 + ask.max_tokens * 8 // max(len(text), 1)))[: ask.max_tokens * 8]
        truncated = False
    else:
        text, truncated = content.truncate_to_tokens(text, ask.max_tokens)
    completion = content.text_tokens(text)
    delay = settings.latency_s + settings.latency_per_token_s * completion
    if delay:
        await asyncio.sleep(delay)
    if kind == "malformed":
        return web.Response(status=200, body=b'{"choices": [ {"message": ', content_type="application/json")
    body = formats.success(ask, text, prompt, completion, truncated, usage=kind != "missing_usage")
    if kind == "slow_body":
        return await _trickle(request, orjson.dumps(body), settings.slow_body_s)
    if kind in ("oversized", "oversized_stream"):
        return await _oversized(request, settings.oversized_bytes, declared=kind == "oversized")
    return _reply(200, body)


async def _oversized(request: web.Request, size: int, declared: bool) -> web.StreamResponse:
    """`size` bytes of an answer that never ends in time (a proxy's error page, a runaway server), written in
    1 MiB pieces, with or without a Content-Length: a client has to stop reading it."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    if declared:
        response.content_length = size
    await response.prepare(request)
    piece = b" " * (1 << 20)
    try:
        for start in range(0, size, len(piece)):
            await response.write(piece[: size - start])
        await response.write_eof()
    except ConnectionError:
        pass  # the client stopped reading, as it should
    return response


async def _trickle(request: web.Request, payload: bytes, seconds: float) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    pieces = 8
    step = max(1, len(payload) // pieces)
    for start in range(0, len(payload), step):
        await response.write(payload[start : start + step])
        await asyncio.sleep(seconds / pieces)
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    models = sorted({key.split(":")[1] for key in state.stats if key.count(":") == 2})
    return _reply(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "simulator"} for m in models]})


async def _stats(request: web.Request) -> web.Response:
    return _reply(200, dict(request.app[STATE_KEY].stats))


async def _set_faults(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        body = orjson.loads(await request.read())
        rules = [fault_from_node(node) for node in Node(body, "faults").sequence()]
    except (orjson.JSONDecodeError, ConfigError) as exc:
        return _reply(400, {"error": str(exc)})
    state.replace_faults(rules)
    return _reply(200, {"faults": len(rules)})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.stats.clear()
    state.replace_faults(list(state.settings.faults))
    return _reply(200, {"reset": True})


def _check_host(host: str, settings: SimulatorSettings) -> None:
    if not is_loopback(host) and not settings.bearer_token:
        raise ConfigError(f"the simulator will not listen on {host} without a bearer token")


class Simulator:
    """A started simulator: its URL and run-time controls."""

    def __init__(self, app: web.Application, url: str) -> None:
        self._app = app
        self.url = url

    def stats(self) -> dict[str, int]:
        return dict(self._app[STATE_KEY].stats)

    def set_faults(self, faults: list[FaultRule]) -> None:
        self._app[STATE_KEY].replace_faults(list(faults))


@contextlib.asynccontextmanager
async def serve(settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Simulator]:
    """Run the simulator on the current asyncio loop for the duration of the block."""
    _check_host(host, settings)
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield Simulator(app, f"http://{host}:{bound}")
    finally:
        await runner.cleanup()


class SimulatorThread:
    """The simulator on its own asyncio loop in a daemon thread: usable from any code.

    Its state is touched only on its own loop: `stats` and `set_faults` hop onto it.
    """

    def __init__(self, settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self._settings = settings
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator", daemon=True)
        self._stop: asyncio.Event | None = None
        self._done: Any = None
        self._sim: Simulator | None = None

    @property
    def url(self) -> str:
        assert self._sim is not None, "simulator not started"
        return self._sim.url

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        started: asyncio.Future[Simulator] | Any = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._sim = started.result(timeout=30)
        return self

    async def _start(self) -> Simulator:
        ready: asyncio.Future[Simulator] = self._loop.create_future()
        self._stop = asyncio.Event()

        async def main() -> None:
            async with serve(self._settings, self._host, self._port) as sim:
                ready.set_result(sim)
                assert self._stop is not None
                await self._stop.wait()

        self._done = self._loop.create_task(main())
        return await ready

    def stats(self) -> dict[str, int]:
        assert self._sim is not None
        sim = self._sim

        async def read() -> dict[str, int]:
            return sim.stats()

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout=10)

    def set_faults(self, faults: list[FaultRule]) -> None:
        assert self._sim is not None
        sim = self._sim

        async def write() -> None:
            sim.set_faults(faults)

        asyncio.run_coroutine_threadsafe(write(), self._loop).result(timeout=10)

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            assert self._stop is not None
            self._stop.set()
            await self._done

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def run_forever(settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve until interrupted (the `orchestrator simulator` command)."""
    _check_host(host, settings)
    web.run_app(build_app(settings), host=host, port=port, access_log=None, print=None)

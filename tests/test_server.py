"""The OpenAI-compatible surface, over real loopback HTTP."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import attrs
import pytest
from aiohttp import web

from actors.errors import InvalidRequest
from orchestrator import Orchestrator, load_config
from orchestrator.server import InsecureBinding, app_runner, build_app, check_binding

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def serving(tmp_path: Path, token: str | None = None, limit_nd: int | None = None,
                  faults: list[dict[str, object]] | None = None) -> AsyncIterator[str]:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path, environ={})
    if faults is not None:
        config = attrs.evolve(config, simulator={**(config.simulator or {}), "faults": faults})
    if limit_nd is not None:
        engine = attrs.evolve(
            config.engine,
            ledger=attrs.evolve(config.engine.ledger, limit_nd=limit_nd),
            router=attrs.evolve(config.engine.router, selection=attrs.evolve(config.engine.router.selection, downgrade_on_budget=False)),
        )
        config = attrs.evolve(config, engine=engine)
    async with Orchestrator.start(config) as orch:
        runner = web.AppRunner(build_app(orch, token))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    async for url in serving(tmp_path):
        yield url


@pytest.mark.anyio
async def test_an_openai_client_request_is_routed_and_answered(server: str) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Fix the typo in README.md"}], "max_tokens": 50}
    async with aiohttp.ClientSession() as session, session.post(f"{server}/v1/chat/completions", json=body) as resp:
        answer = await resp.json()
    assert resp.status == 200
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] <= 50
    assert answer["x_orchestrator"]["tier"] == "tier_1" and answer["x_orchestrator"]["level"] == "simple"


@pytest.mark.anyio
async def test_a_tier_name_as_model_overrides_routing_and_models_are_listed(server: str) -> None:
    body = {"model": "tier_3", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server}/v1/chat/completions", json=body) as resp:
            answer = await resp.json()
        async with session.get(f"{server}/v1/models") as resp:
            models = {m["id"] for m in (await resp.json())["data"]}
    assert answer["x_orchestrator"]["tier"] == "tier_3"
    assert {"auto", "tier_1", "gpt-5"} <= models


@pytest.mark.anyio
async def test_metrics_are_prometheus_text_and_health_reports_actors(server: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        await (await session.post(f"{server}/v1/chat/completions", json=body)).read()
        metrics = await (await session.get(f"{server}/metrics")).text()
        health = await (await session.get(f"{server}/health")).json()
    assert "# TYPE orchestrator_requests_total counter" in metrics
    assert 'orchestrator_requests_total{code="OK"} 1' in metrics
    assert 'orchestrator_budget_nanodollars{kind="limit"} 100000000000' in metrics
    assert 'orchestrator_budget_nanodollars{kind="held"} 0' in metrics
    assert "orchestrator_budget_queue_waiting 0" in metrics and "# TYPE orchestrator_budget_queue_waits_total counter" in metrics
    on_loop = re.search(r'^orchestrator_ledger_journal_writes_total\{on="loop"\} (\d+)$', metrics, re.MULTILINE)
    assert on_loop and int(on_loop[1]) >= 1, "the request's reservation was journaled on the loop"
    assert re.search(r'^orchestrator_ledger_journal_writes_total\{on="thread"\} \d+$', metrics, re.MULTILINE)
    assert "# TYPE orchestrator_ledger_journal_loop_seconds_total counter" in metrics
    assert health["status"] == "ok" and "ledger" in health["actors"]


@pytest.mark.anyio
async def test_metrics_show_the_money_held_for_calls_whose_outcome_is_unknown(tmp_path: Path) -> None:
    """Every answer malformed: sent, maybe billed, so held; an operator alerting on spend must see it."""
    async for url in serving(tmp_path, faults=[{"kind": "malformed", "rate": 1.0}]):
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}) as resp:
                assert resp.status == 503
            metrics = await (await session.get(f"{url}/metrics")).text()
    held = re.search(r'^orchestrator_budget_nanodollars\{kind="held"\} (\d+)$', metrics, re.MULTILINE)
    reserved = re.search(r'^orchestrator_budget_nanodollars\{kind="reserved"\} (\d+)$', metrics, re.MULTILINE)
    assert held and reserved and int(held[1]) == int(reserved[1]) > 0


@pytest.mark.anyio
async def test_errors_use_openai_bodies_and_the_sources_codes(tmp_path: Path) -> None:
    async for url in serving(tmp_path, limit_nd=1):
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}) as resp:
                budget, budget_status = await resp.json(), resp.status
            async with session.post(f"{url}/v1/chat/completions", data=b"{nope") as resp:
                bad = await resp.json()
        assert budget_status == 402 and budget["error"]["code"] == "BUDGET_EXCEEDED"
        assert resp.status == 400 and bad["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.anyio
async def test_a_bearer_token_is_required_when_configured(tmp_path: Path) -> None:
    async for url in serving(tmp_path, token="s3cret"):
        body = {"messages": [{"role": "user", "content": "x"}]}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
                denied = resp.status
            async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer s3cret"}) as resp:
                allowed = resp.status
        assert denied == 401 and allowed == 200


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "token")
    with pytest.raises(InsecureBinding, match="without a bearer token"):
        check_binding("0.0.0.0", None)


def test_a_body_becomes_requests_that_fail_fast_at_rate_limits_and_substitute_as_asked() -> None:
    """What the server asks of the engine for one body: never wait at a provider's rate limit (an HTTP client has
    its own timeout), substitute as the body's x_orchestrator says or else as the server allows, one request per n."""
    from orchestrator.openai_wire import include_usage, requests_from_body

    body = {"model": "tier_1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}
    (plain,), stream = requests_from_body(body, {"tier_1"}, False)
    assert (plain.wait_rate_limits, plain.substitute, plain.tier, plain.max_tokens, stream) == (False, False, "tier_1", 7, False)
    (allowed,), _ = requests_from_body(body, {"tier_1"}, True)
    assert allowed.substitute is True and allowed.wait_rate_limits is False
    (refused,), _ = requests_from_body({**body, "x_orchestrator": {"substitute": False}}, {"tier_1"}, True)
    assert refused.substitute is False
    (unsaid,), _ = requests_from_body({**body, "x_orchestrator": {"substitute": None}}, {"tier_1"}, True)
    assert unsaid.substitute is True, "null says nothing: the server's setting"
    with pytest.raises(InvalidRequest, match="x_orchestrator.substitute must be true or false, got 'no'"):
        requests_from_body({**body, "x_orchestrator": {"substitute": "no"}}, {"tier_1"}, False)  # was read as True
    assert (include_usage(body), include_usage({"stream_options": {"include_usage": True}})) == (False, True)
    with pytest.raises(InvalidRequest, match="stream_options.include_usage must be true or false, got 'false'"):
        include_usage({"stream_options": {"include_usage": "false"}})  # was read as true
    with pytest.raises(InvalidRequest, match="stream_options must be an object"):
        include_usage({"stream_options": True})
    for falsy in (0, ""):
        with pytest.raises(InvalidRequest, match="stream must be true or false"):
            requests_from_body({**body, "stream": falsy}, {"tier_1"}, False)
    for falsy in (0, False, []):
        with pytest.raises(InvalidRequest, match="model must be a string"):
            requests_from_body({**body, "model": falsy}, {"tier_1"}, False)
    for falsy in (0, False, [], ""):
        with pytest.raises(InvalidRequest, match="x_orchestrator must be an object"):
            requests_from_body({**body, "x_orchestrator": falsy}, {"tier_1"}, False)
    samples, _ = requests_from_body({**body, "model": "m", "n": 3, "seed": 5}, {"tier_1"}, False)
    assert [(r.model, r.sample_index, r.wait_rate_limits) for r in samples] == [("m", 5, False), ("m", 6, False), ("m", 7, False)]
    assert len({r.request_id for r in samples}) == 3


@pytest.mark.anyio
async def test_a_malformed_http_request_is_answered_400_and_logged_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 9 KB URL: aiohttp logged a traceback per such request; `serve` logs one line naming it."""
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path, environ={})
    async with Orchestrator.start(config) as orch:
        runner = app_runner(build_app(orch))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            with caplog.at_level(logging.DEBUG, logger="orchestrator.server"):
                async with await anyio.connect_tcp("127.0.0.1", runner.addresses[0][1]) as stream:
                    await stream.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                    answer = await stream.receive()
        finally:
            await runner.cleanup()
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    records = [r for r in caplog.records if r.name == "orchestrator.server"]
    assert len(records) == 1 and records[0].exc_info is None
    assert "malformed HTTP request (400): Got more than 8190 bytes" in records[0].getMessage()


def test_an_error_of_the_servers_own_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    adapter = app_runner(web.Application())._kwargs["logger"]
    with caplog.at_level(logging.ERROR, logger="orchestrator.server"):
        try:
            raise RuntimeError("a handler's bug")
        except RuntimeError as exc:
            adapter.exception("Error handling request from %s", "127.0.0.1", exc_info=exc)
    assert caplog.records[-1].exc_info is not None and caplog.records[-1].exc_info[1].args == ("a handler's bug",)

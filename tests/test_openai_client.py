"""The official `openai` client against the server on loopback: what a real caller relies on.

Streaming, `n` samples, content parts, errors as the client raises them (and whether
it retries them), pinned models, and a client that gives up mid-request.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import openai
import pytest
from aiohttp import web

from orchestrator import Orchestrator, load_config
from orchestrator.server import build_app

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
USER = [{"role": "user", "content": "Fix the typo in README.md"}]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@attrs.define
class Served:
    url: str
    orch: Orchestrator
    clients: list[openai.AsyncOpenAI] = attrs.Factory(list)

    def client(self, **options: Any) -> openai.AsyncOpenAI:
        made = openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key="unused-on-loopback", **options)
        self.clients.append(made)
        return made


async def serve(tmp_path: Path, limit_nd: int | None = None, simulator: dict[str, Any] | None = None) -> AsyncIterator[Served]:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path, environ={})
    if limit_nd is not None:
        config = attrs.evolve(config, engine=attrs.evolve(
            config.engine, ledger=attrs.evolve(config.engine.ledger, limit_nd=limit_nd)))
    if simulator is not None:
        config = attrs.evolve(config, simulator=simulator)
    async with Orchestrator.start(config) as orch:
        runner = web.AppRunner(build_app(orch), handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        served = Served(f"http://127.0.0.1:{runner.addresses[0][1]}", orch)
        try:
            yield served
        finally:
            for client in served.clients:
                await client.close()
            await runner.cleanup()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in serve(tmp_path):
        yield s


@pytest.mark.anyio
async def test_a_completion_names_what_answered(served: Served) -> None:
    raw = await served.client().chat.completions.with_raw_response.create(model="auto", messages=USER, max_tokens=50)
    answer = raw.parse()
    assert answer.choices[0].message.content and answer.choices[0].finish_reason in ("stop", "length")
    assert raw.headers["x-orchestrator-tier"] == "tier_1"
    assert answer.model == raw.headers["x-orchestrator-model"]


@pytest.mark.anyio
async def test_streaming_delivers_the_text_and_a_final_usage_chunk(served: Served) -> None:
    stream = await served.client().chat.completions.create(
        model="auto", messages=USER, max_tokens=200, stream=True, stream_options={"include_usage": True}, seed=3,
    )
    text, reasons, usage = "", [], None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            reasons.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usage = chunk.usage
    whole = await served.client().chat.completions.create(model="auto", messages=USER, max_tokens=200, seed=3)
    assert text == whole.choices[0].message.content, "the same seed is the same sample"
    assert reasons[-1] in ("stop", "length") and usage is not None and usage.completion_tokens > 0


@pytest.mark.anyio
async def test_n_gives_independent_samples(served: Served) -> None:
    raw = await served.client().chat.completions.with_raw_response.create(
        model="auto", messages=USER, max_tokens=50, n=3, temperature=0.9,
    )
    answer = raw.parse()
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert sorted(answer.model_extra["x_orchestrator"]["samples"]) == [0, 1, 2]


@pytest.mark.anyio
async def test_content_parts_and_a_null_assistant_turn_are_accepted(served: Served) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the "}, {"type": "text", "text": "typo"}]},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "in README.md"},
    ]
    answer = await served.client().chat.completions.create(model="auto", messages=messages, max_tokens=20)
    assert answer.choices[0].message.content


@pytest.mark.anyio
async def test_errors_are_raised_as_the_client_knows_them_and_not_retried(served: Served) -> None:
    client = served.client(max_retries=2)
    with pytest.raises(openai.NotFoundError, match="no provider serves model 'gpt-7'"):
        await client.chat.completions.create(model="gpt-7", messages=USER)
    with pytest.raises(openai.BadRequestError, match="tools is not supported"):
        await client.chat.completions.create(
            model="auto", messages=USER, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    with pytest.raises(openai.BadRequestError, match="max_tokens must be an integer from 1"):
        await client.chat.completions.create(model="auto", messages=USER, max_tokens=10_000_000)
    errors = served.orch.routing_stats()["errors"]
    assert errors == {"MODEL_NOT_FOUND": 1}, "x-should-retry: false stops the client's retries"


@pytest.mark.anyio
async def test_a_pinned_tier_over_budget_is_a_402_not_a_cheaper_answer(tmp_path: Path) -> None:
    async for served in serve(tmp_path, limit_nd=20_000):
        with pytest.raises(openai.APIStatusError) as caught:
            await served.client(max_retries=0).chat.completions.create(model="tier_4", messages=USER, max_tokens=4000)
        assert caught.value.status_code == 402 and caught.value.code == "BUDGET_EXCEEDED"
        raw = await served.client().chat.completions.with_raw_response.create(
            model="tier_4", messages=USER, max_tokens=50, extra_headers={"x-orchestrator-allow-substitute": "true"},
        )
        assert raw.headers["x-orchestrator-tier"] != "tier_4", "substitution only when the caller allows it"


@pytest.mark.anyio
async def test_a_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    faults = {"faults": [{"kind": "rate_limit", "rate": 1.0, "retry_after": 7}]}
    async for served in serve(tmp_path, simulator=faults):
        with pytest.raises(openai.RateLimitError) as caught:
            await served.client(max_retries=0).chat.completions.create(
                model="auto", messages=USER, extra_body={"x_orchestrator": {"deadline_s": 2}},
            )
        assert caught.value.response.headers["retry-after"] == "7"
        async with aiohttp.ClientSession() as session, session.get(f"{served.orch.simulator_url}/_sim/stats") as resp:
            stats = await resp.json()
        calls = sum(v for k, v in stats.items() if k.endswith(":requests"))
        paid = len([t for t in served.orch.engine.router.tiers if not t.local]) + 1
        assert calls <= paid, "one upstream call per candidate at most: the client does the retrying"


@pytest.mark.anyio
async def test_a_client_that_gives_up_stops_its_workflow_and_leaves_the_books_exact(tmp_path: Path) -> None:
    async for served in serve(tmp_path, simulator={"latency_s": 0.5}):
        with pytest.raises(openai.APITimeoutError):
            await served.client(max_retries=0, timeout=0.1).chat.completions.create(model="auto", messages=USER)
        with anyio.fail_after(10):
            while (await served.orch.budget()).outstanding:
                await anyio.sleep(0.05)
        await anyio.sleep(1.0)
        budget = await served.orch.budget()
        stats = served.orch.routing_stats()
    assert budget.outstanding == 0 and budget.reserved_nd == 0
    assert budget.settled_nd > 0, "the call that left was settled with its usage"
    assert stats["results"] == 0 and stats["in_flight"] == 0, "no retry or fallback after the client left"


@pytest.mark.anyio
async def test_every_error_is_openai_json_and_the_extras_exist(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{served.url}/v1/nothing") as resp:
            missing = (resp.status, await resp.json())
        async with session.post(f"{served.url}/v1/chat/completions", data=io.BytesIO(b"x" * (13 * 1024 * 1024)),
                                headers={"Content-Type": "application/json"}) as resp:
            too_big = (resp.status, await resp.json())
        async with session.post(f"{served.url}/v1/chat/completions", data=b'{"messages": []}',
                                headers={"Content-Type": "text/plain"}) as resp:
            plain = (resp.status, await resp.json())
        async with session.post(f"{served.url}/v1/chat/completions", json={"messages": 5}) as resp:
            bad_messages = (resp.status, await resp.json(), resp.headers.get("x-should-retry"))
        async with session.get(f"{served.url}/v1/models") as resp:
            models = await resp.json()
        async with session.post(f"{served.url}/v1/feedback", json={"request_id": "r1", "score": 0.5}) as resp:
            feedback = resp.status
        async with session.post(f"{served.url}/v1/feedback", json={"request_id": "r" * 300, "score": 0.5}) as resp:
            long_id = (resp.status, await resp.json())
        async with session.get(f"{served.url}/v1/budget") as resp:
            budget = await resp.json()
    assert missing[0] == 404 and "error" in missing[1]
    assert too_big[0] == 413 and "error" in too_big[1]
    assert plain[0] == 400 and "must be JSON" in plain[1]["error"]["message"]
    assert bad_messages[0] == 400 and bad_messages[2] == "false" and "messages must be" in bad_messages[1]["error"]["message"]
    assert all(isinstance(m["created"], int) for m in models["data"])
    assert feedback == 200 and budget["limit_nd"] > 0
    assert long_id[0] == 400 and "request_id must be a string of 1 to 256" in long_id[1]["error"]["message"]


@pytest.mark.anyio
async def test_a_client_reusing_a_request_id_never_takes_the_ledger_down(served: Served) -> None:
    client = served.client(max_retries=0)
    same = {"x_orchestrator": {"request_id": "client-chosen-id"}}
    first = await client.chat.completions.create(model="auto", messages=USER, extra_body=same, max_tokens=20)
    second = await client.chat.completions.create(model="auto", messages=USER, extra_body=same, max_tokens=20)
    assert first.choices[0].message.content and second.choices[0].message.content
    assert served.orch.health()["ledger"]["restarts"] == 0
    assert (await served.orch.budget()).outstanding == 0


def test_a_stream_waits_for_one_provider_at_most_the_first_token_bound() -> None:
    from orchestrator.openai_wire import requests_from_body

    body = {"model": "auto", "messages": USER, "stream": True}
    (streamed,), stream = requests_from_body(body, {"tier_1"}, False, stream_first_token_s=4.0)
    (plain,), _ = requests_from_body({**body, "stream": False}, {"tier_1"}, False, stream_first_token_s=4.0)
    (chosen,), _ = requests_from_body({**body, "x_orchestrator": {"attempt_timeout_s": 9}}, {"tier_1"}, False, 4.0)
    assert stream and streamed.attempt_timeout_s == 4.0 and plain.attempt_timeout_s is None
    assert chosen.attempt_timeout_s == 9


@pytest.mark.anyio
async def test_a_ledger_that_cannot_answer_is_a_503_on_budget_and_metrics(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared (PostgreSQL) ledger whose database is down: the server says so, in OpenAI's shape, not a 500."""
    from actors.errors import LedgerUnavailable

    async def unavailable() -> None:
        raise LedgerUnavailable("the shared ledger's database is unreachable")

    monkeypatch.setattr(served.orch, "budget", unavailable)
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/budget", "/metrics"):
            async with session.get(f"{served.url}{path}") as resp:
                assert resp.status == 503, path
                assert (await resp.json())["error"]["code"] == "LEDGER_UNAVAILABLE"

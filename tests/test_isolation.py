"""One bad request fails alone: the ledger, the router and the server keep serving everyone else.

Regressions of issue 10: a reused request id, a negative amount, a crashed in-memory
ledger, a provider echoing its key, and health that says ok while the ledger is down.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import attrs
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import DuplicateRequest, LedgerError, StrategyUnavailable
from actors.ledger.actor import LedgerActor
from actors.ledger.client import LedgerClient
from actors.ledger.core import LedgerCore
from actors.ledger.journal import MemoryStorage
from actors.ledger.settings import LedgerSettings
from actors.messages import Request
from actors.runtime.breaker import BreakerSettings, CircuitBreaker, CircuitState
from actors.runtime.supervisor import Supervisor
from orchestrator import Orchestrator
from tests.fakes import ScriptedTransport, openai_error, openai_ok
from tests.test_failover import SIMPLE, config, scripted

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.anyio
async def test_a_bad_ledger_operation_fails_its_caller_alone(anyio_backend: str) -> None:
    storage = MemoryStorage()
    settings = LedgerSettings(limit_nd=10**9, journal_path="memory")
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings, storage_factory=lambda: storage)))
    outcomes: dict[int, object] = {}

    async def client(i: int) -> None:
        amount = -1_000_000_000 if i == 100 else 100
        rid = "dup" if i in (7, 8) else f"r{i}"
        try:
            outcomes[i] = (await ledger.reserve(rid, f"q{i}", "t", "m", amount)).granted
        except LedgerError as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        async with anyio.create_task_group() as clients:
            for i in range(200):
                clients.start_soon(client, i)
        status = await ledger.status()
        health = supervisor.health()["ledger"]
        supervisor.stop()
    errors = {i: o for i, o in outcomes.items() if isinstance(o, LedgerError)}
    assert set(errors) in ({100, 7}, {100, 8}), "the negative amount and the second 'dup' fail, nothing else"
    assert "cannot be negative" in str(errors[100])
    assert sum(1 for o in outcomes.values() if o is True) == 198
    assert status.reserved_nd == 198 * 100
    assert health["restarts"] == 0 and health["running"]


@pytest.mark.trio
async def test_an_in_memory_ledger_that_crashes_forgets_no_spending(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = LedgerCore.apply
    crashes = []

    def apply_once_broken(self: LedgerCore, entry: object) -> object:
        if getattr(entry, "op", "") == "settle" and not crashes:
            crashes.append(entry)
            raise KeyError("simulated broken state")
        return real_apply(self, entry)  # type: ignore[arg-type]

    async with Orchestrator.start(config(tmp_path), transport_factory=scripted({})) as orch:
        assert orch.engine.ledger.journal_path is None, "this is the in-memory ledger"
        first = await orch.generate(attrs.evolve(SIMPLE, request_id="before"))
        await orch.budget()
        monkeypatch.setattr(LedgerCore, "apply", apply_once_broken)
        crashed = await orch.generate(attrs.evolve(SIMPLE, request_id="during"))
        await trio.testing.wait_all_tasks_blocked()
        ready, why = orch.ready()
        assert not ready and "simulated broken state" in why, "health tells the ledger is down, and why"
        await trio.sleep(5)
        assert orch.ready() == (True, "ok")
        after = await orch.generate(attrs.evolve(SIMPLE, request_id="after"))
        budget = await orch.budget()
        health = orch.health()["ledger"]
    assert health["restarts"] == 1 and "KeyError" in str(health["last_error"])
    assert budget.settled_nd == first.cost_nd + after.cost_nd, "what was settled before the crash is still there"
    assert budget.unreconciled_nd > 0 and budget.outstanding == 1, "the settle lost in the crash counts as spent"
    assert crashed.text, "the provider answered; its caller still got the result"


@pytest.mark.trio
async def test_the_same_request_id_in_flight_joins_or_is_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    slow = ScriptedTransport(default=openai_ok(), delay=5)
    transports = {name: slow for name in ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")}
    request = attrs.evolve(SIMPLE, request_id="same")
    other = attrs.evolve(Request.prompt("something else entirely"), request_id="same")
    results: list[object] = []

    async def send(req: Request) -> None:
        try:
            results.append(await orch.generate(req))
        except DuplicateRequest as exc:
            results.append(exc)

    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, request)
            await trio.sleep(1)
            nursery.start_soon(send, request)
            nursery.start_soon(send, other)
        again = await orch.generate(request)
        budget = await orch.budget()
    refused = [r for r in results if isinstance(r, DuplicateRequest)]
    answered = [r for r in results if not isinstance(r, DuplicateRequest)]
    assert len(refused) == 1 and "already in flight with a different request" in str(refused[0])
    assert len(answered) == 2 and answered[0] is answered[1], "the second caller joined the first"
    assert again.text, "the id is free again once the request ended"
    assert len(slow.calls) == 2, "one upstream call for the joined pair, one for the re-run"
    assert budget.settled_nd == answered[0].cost_nd + again.cost_nd  # type: ignore[attr-defined]


@pytest.mark.trio
async def test_a_provider_echoing_its_key_never_leaks_it(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    echo = openai_error(400, message=f"bad request; you sent Authorization: Bearer {SECRET} and key={SECRET}")
    transports = {name: ScriptedTransport(default=echo) for name in ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")}
    cfg = config(tmp_path)
    providers = tuple(attrs.evolve(p, api_key_env="TEST_PROVIDER_KEY") for p in cfg.engine.providers)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, providers=providers))
    async with Orchestrator.start(cfg, transport_factory=scripted(transports), environ={"TEST_PROVIDER_KEY": SECRET}) as orch:
        with pytest.raises(Exception) as caught:
            await orch.generate(SIMPLE)
    assert "[redacted]" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_every_breaker_transition_is_published_however_many() -> None:
    published = []
    breaker = CircuitBreaker("p", BreakerSettings(max_restarts=10**6), published.append)
    for i in range(500):
        breaker.record_crash(float(i))
        breaker.record_started(float(i))
    assert len(published) == 1000 == breaker.transitions_total
    assert [t.new for t in published[-2:]] == [CircuitState.RESTARTING, CircuitState.CLOSED]


@pytest.mark.trio
async def test_every_provider_failing_ends_within_the_last_candidates_backoff(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    down = openai_error(503, retry_after="30")
    transports = {name: ScriptedTransport(default=down) for name in ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        with pytest.raises(StrategyUnavailable, match="server_error"):
            await orch.generate(attrs.evolve(SIMPLE, deadline_s=20))
        elapsed = trio.current_time() - start
    assert elapsed < 20, "a Retry-After past the deadline is not waited out"


@pytest.mark.trio
async def test_a_retry_after_does_not_stall_while_another_provider_is_healthy(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=openai_error(503, retry_after="30"))}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(SIMPLE)
        assert trio.current_time() - start == 0
    assert [a.outcome for a in result.attempts] == ["server_error", "ok"]


@pytest.mark.trio
async def test_one_context_length_answer_does_not_exclude_every_provider(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    too_long = openai_error(400, "context_length_exceeded", "maximum context length exceeded")
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=too_long), "Gemini 2.5 Flash": ScriptedTransport(default=too_long)}
    cfg = config(tmp_path)
    same_window = tuple(attrs.evolve(p, context_window=32_768) for p in cfg.engine.providers)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, providers=same_window))
    async with Orchestrator.start(cfg, transport_factory=scripted(transports)) as orch:
        result = await orch.generate(SIMPLE)
    assert result.provider not in ("Qwen2.5-Coder", "Gemini 2.5 Flash")
    assert result.attempts[-1].outcome == "ok"


@pytest.mark.trio
async def test_an_attempt_timeout_moves_a_slow_provider_on_to_the_next(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=openai_ok(), delay=60)}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(attrs.evolve(SIMPLE, attempt_timeout_s=2))
        elapsed = trio.current_time() - start
        budget = await orch.budget()
    assert elapsed == pytest.approx(2) and result.provider != "Qwen2.5-Coder"
    assert [a.outcome for a in result.attempts] == ["timeout", "ok"]
    assert result.attempts[0].held_nd > 0 and budget.unreconciled_nd == result.attempts[0].held_nd, (
        "the slow call left: its money is held, not released"
    )

"""Retry, fallback, circuit breaking and rate limits, in virtual time.

Providers here answer from `ScriptedTransport` (no sockets), so trio's MockClock with
autojump can run a minute of backoff in microseconds. The ledger is in memory and
the cache and telemetry are off: nothing hides real I/O in a worker thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from actors.errors import InvalidRequest, StrategyUnavailable
from actors.messages import ArcPair, ArcTask, Request
from actors.providers.settings import ProviderSettings
from orchestrator import Orchestrator, load_config
from orchestrator.config import Config
from orchestrator.metrics import render_metrics
from tests.fakes import ScriptedTransport, openai_error, openai_ok

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SIMPLE = Request.prompt("Fix the typo in README.md")


def config(tmp_path: Path, **engine: object) -> Config:
    base = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path, environ={})
    providers = tuple(attrs.evolve(p, base_url="http://provider.invalid/v1", protocol="openai") for p in base.engine.providers)
    settings = attrs.evolve(
        base.engine,
        providers=providers,
        ledger=attrs.evolve(base.engine.ledger, journal_path=None),
        cache=attrs.evolve(base.engine.cache, enabled=False),
        telemetry=attrs.evolve(base.engine.telemetry, dir=None),
        retry=attrs.evolve(base.engine.retry, jitter=0.0),
        **engine,
    )
    return attrs.evolve(base, engine=settings)


def retrying(cfg: Config) -> Config:
    """Retry each candidate up to three times before falling back (the default falls back at once)."""
    return attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, retry=attrs.evolve(cfg.engine.retry, before_fallback=3)))


def scripted(transports: dict[str, ScriptedTransport]) -> Callable[[ProviderSettings, object], ScriptedTransport]:
    def factory(settings: ProviderSettings, _loop: object) -> ScriptedTransport:
        return transports.setdefault(settings.name, ScriptedTransport(default=openai_ok()))

    return factory


@pytest.mark.trio
async def test_backoff_doubles_from_one_second_then_succeeds(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport([openai_error(500)] * 3, default=openai_ok())}
    async with Orchestrator.start(retrying(config(tmp_path)), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(SIMPLE)
        elapsed = trio.current_time() - start
        budget = await orch.budget()
    assert [a.outcome for a in result.attempts] == ["server_error"] * 3 + ["ok"]
    assert elapsed == pytest.approx(1 + 2 + 4)
    assert budget.settled_nd == result.cost_nd == result.attempts[-1].cost_nd and budget.outstanding == 0


@pytest.mark.trio
async def test_backoff_is_capped(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, retry=attrs.evolve(
        cfg.engine.retry, initial_s=10, factor=10, cap_s=60, before_fallback=3)))
    transports = {"Qwen2.5-Coder": ScriptedTransport([openai_error(502)] * 3, default=openai_ok())}
    async with Orchestrator.start(cfg, transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        await orch.generate(SIMPLE)
        assert trio.current_time() - start == pytest.approx(10 + 60 + 60)


@pytest.mark.trio
async def test_retry_after_is_honoured_over_a_shorter_backoff(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport([openai_error(503, retry_after="30")], default=openai_ok())}
    async with Orchestrator.start(retrying(config(tmp_path)), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(SIMPLE)
        assert trio.current_time() - start == pytest.approx(30)
    assert result.provider == "Qwen2.5-Coder"


@pytest.mark.trio
async def test_a_rate_limit_switches_to_an_alternative_at_once(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=openai_error(429, "rate_limit_exceeded", retry_after="20"))}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(SIMPLE)
        assert trio.current_time() - start == 0
        budget = await orch.budget()
    assert [a.outcome for a in result.attempts] == ["rate_limit", "ok"]
    assert result.provider != "Qwen2.5-Coder"
    assert budget.outstanding == 0


@pytest.mark.trio
async def test_context_length_moves_to_a_larger_window(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    too_long = openai_error(400, "context_length_exceeded", "maximum context length is 32768 tokens")
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=too_long)}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        result = await orch.generate(SIMPLE)
        windows = {p.name: p.context_window for p in orch.engine.providers}
    assert result.attempts[0].outcome == "context_length"
    assert windows[result.provider] > windows["Qwen2.5-Coder"]


@pytest.mark.trio
async def test_auth_failure_disables_only_that_provider(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=openai_error(401, "invalid_api_key"))}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        first = await orch.generate(SIMPLE)
        second = await orch.generate(attrs.evolve(SIMPLE, request_id="again"))
        health = orch.health()
    assert [a.outcome for a in first.attempts] == ["auth", "ok"]
    assert [a.outcome for a in second.attempts] == ["ok"] and second.provider != "Qwen2.5-Coder"
    assert len(transports["Qwen2.5-Coder"].calls) == 1, "no retry on AUTH, and no second try"
    assert health["Qwen2.5-Coder"]["state"] == "disabled"
    assert all(h["state"] == "closed" for n, h in health.items() if n != "Qwen2.5-Coder")


@pytest.mark.trio
async def test_a_provider_breaking_its_circuit_is_logged_in_one_line_naming_its_last_failure(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that crashes on purpose after consecutive failures is an expected event: one line that says why
    (the last failure's kind and detail), no traceback of the actor's own loop; a crash nobody meant keeps its
    traceback (tests/test_runtime.py)."""
    cfg = config(tmp_path)
    breaker = attrs.evolve(cfg.engine.breaker, failures_to_crash=2, backoff_initial_s=1)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, breaker=breaker, retry=attrs.evolve(cfg.engine.retry, max_retries=0)))
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=openai_error(500))}
    with caplog.at_level(logging.WARNING, logger="actors.runtime.supervisor"):
        async with Orchestrator.start(cfg, transport_factory=scripted(transports)) as orch:
            for i in range(2):
                assert (await orch.generate(attrs.evolve(SIMPLE, request_id=f"r{i}"))).text
            await trio.sleep(0.5)
            last_error = orch.health()["Qwen2.5-Coder"]["last_error"]
    crashes = [r for r in caplog.records if r.getMessage().startswith("Qwen2.5-Coder crashed")]
    assert last_error.startswith("ProviderCrashed: Qwen2.5-Coder: 2 consecutive failures, the last: server_error")
    assert crashes and all(r.levelname == "WARNING" and "Traceback" not in r.getMessage() for r in crashes)
    assert last_error in crashes[0].getMessage()


@pytest.mark.trio
async def test_circuit_opens_past_the_restart_intensity_then_a_probe_closes_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    breaker = attrs.evolve(cfg.engine.breaker, failures_to_crash=2, max_restarts=1, window_s=300, cooldown_s=100,
                           backoff_initial_s=1, probe_timeout_s=20)
    retry = attrs.evolve(cfg.engine.retry, max_retries=0)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, breaker=breaker, retry=retry))
    qwen = ScriptedTransport(default=openai_error(500))
    transports = {"Qwen2.5-Coder": qwen}
    async with Orchestrator.start(cfg, transport_factory=scripted(transports)) as orch:
        states = []
        for i in range(6):
            result = await orch.generate(attrs.evolve(SIMPLE, request_id=f"r{i}"))
            assert result.text, "every request is answered by a fallback"
            await trio.sleep(2)
            states.append(orch.health()["Qwen2.5-Coder"]["state"])
        assert states[-1] == "open"
        calls_while_open = len(qwen.calls)
        for i in range(3):
            await orch.generate(attrs.evolve(SIMPLE, request_id=f"open{i}"))
        assert len(qwen.calls) == calls_while_open, "no work is sent while the circuit is open"
        qwen.default = openai_ok()
        await trio.sleep(120)
        probe = await orch.generate(attrs.evolve(SIMPLE, request_id="probe"))
        final = orch.health()["Qwen2.5-Coder"]
    assert probe.provider == "Qwen2.5-Coder"
    assert final["state"] == "closed" and final["restarts"] >= 2


@pytest.mark.trio
async def test_requests_queue_behind_the_requests_per_minute_limit(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    providers = tuple(
        attrs.evolve(p, requests_per_minute=30) if p.name == "Qwen2.5-Coder" else p for p in cfg.engine.providers
    )
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, providers=providers))
    transports: dict[str, ScriptedTransport] = {}
    async with Orchestrator.start(cfg, transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        results = await orch.generate_batch([attrs.evolve(SIMPLE, request_id=f"q{i}") for i in range(60)])
        elapsed = trio.current_time() - start
    assert all(r.provider == "Qwen2.5-Coder" for r in results)  # type: ignore[union-attr]
    assert elapsed == pytest.approx(60, abs=2.5), "the second 30 wait for the bucket to refill"
    assert max(r.queue_s for r in results) > 50  # type: ignore[union-attr]


@pytest.mark.trio
async def test_nothing_available_is_a_prompt_503(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {
        name: ScriptedTransport(default=openai_error(401))
        for name in ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")
    }
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        with pytest.raises(StrategyUnavailable):
            await orch.generate(SIMPLE)
        start = trio.current_time()
        with pytest.raises(StrategyUnavailable, match="no provider can serve it now"):
            await orch.generate(attrs.evolve(SIMPLE, request_id="later"))
        assert trio.current_time() - start == 0


@pytest.mark.trio
async def test_the_last_candidate_waits_out_its_rate_limit(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    transports = {name: ScriptedTransport(default=openai_error(401)) for name in ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5")}
    transports["Falcon Mamba 7B"] = ScriptedTransport([openai_error(429, retry_after="15")], default=openai_ok())
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        start = trio.current_time()
        result = await orch.generate(SIMPLE)
        waited = trio.current_time() - start
    assert result.provider == "Falcon Mamba 7B" and result.cost_nd == 0
    assert [a.outcome for a in result.attempts][-2:] == ["rate_limit", "ok"]
    assert waited == pytest.approx(15)


@pytest.mark.trio
async def test_a_provider_that_asked_for_a_pause_gets_no_calls_until_it_ends(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    qwen = ScriptedTransport([openai_error(429, "rate_limit_exceeded", retry_after="20")], default=openai_ok())
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted({"Qwen2.5-Coder": qwen})) as orch:
        first = await orch.generate(attrs.evolve(SIMPLE, request_id="a"))
        during = await orch.generate(attrs.evolve(SIMPLE, request_id="b"))
        await trio.sleep(21)
        after = await orch.generate(attrs.evolve(SIMPLE, request_id="c"))
    assert [a.outcome for a in first.attempts] == ["rate_limit", "ok"]
    assert during.attempts[0].outcome == "rate_limit" and "rate-limited by the provider" in during.attempts[0].detail
    assert len(qwen.calls) == 2, "no upstream call during the pause; one after it"
    assert after.provider == "Qwen2.5-Coder"


@pytest.mark.trio
async def test_a_provider_never_has_more_than_max_concurrency_calls_in_flight(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Twelve requests at once on a provider that takes three: four waves, and the waiting shows in queue_s."""
    cfg = config(tmp_path)
    providers = tuple(attrs.evolve(p, max_concurrency=3) if p.name == "Qwen2.5-Coder" else p for p in cfg.engine.providers)
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, providers=providers))
    in_flight, most = 0, 0

    class Counting(ScriptedTransport):
        async def send(self, call):  # type: ignore[no-untyped-def, override]
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                return await super().send(call)
            finally:
                in_flight -= 1

    def factory(settings: ProviderSettings, _: object) -> ScriptedTransport:
        return Counting(default=openai_ok(), delay=10.0)

    async with Orchestrator.start(cfg, transport_factory=factory) as orch:
        start = trio.current_time()
        results = await orch.generate_batch([attrs.evolve(SIMPLE, request_id=f"c{i}") for i in range(12)])
        elapsed = trio.current_time() - start
    assert all(r.provider == "Qwen2.5-Coder" for r in results)  # type: ignore[union-attr]
    assert most == 3
    assert elapsed == pytest.approx(40, abs=1), "four waves of three, ten seconds each"
    assert sorted(round(r.queue_s) for r in results) == [0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30]  # type: ignore[union-attr]


@attrs.define
class _CountingTransport:
    """Answers after a second of virtual time, counting the calls in flight at once."""

    in_flight: int = 0
    peak: int = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, call: object) -> object:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await trio.sleep(1)
        self.in_flight -= 1
        return openai_ok()


@pytest.mark.trio
async def test_a_batch_serves_at_most_its_concurrency_at_once_and_answers_in_order(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    transport = _CountingTransport()
    requests = [Request.prompt(f"Fix typo number {i} in README.md") for i in range(10)]
    async with Orchestrator.start(config(tmp_path), transport_factory=lambda settings, loop: transport) as orch:
        started = trio.current_time()
        results = await orch.generate_batch(requests, concurrency=3)
        elapsed = trio.current_time() - started
    assert [r.request_id for r in results] == [r.request_id for r in requests]  # type: ignore[union-attr]
    assert transport.peak == 3 and transport.in_flight == 0
    assert elapsed == pytest.approx(4.0, abs=0.01), "ten one-second calls, three at a time: four rounds"


NAMES = ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")


def refusing() -> dict[str, ScriptedTransport]:
    """Every provider refuses the connection at once, as a host that is down does."""
    return {name: ScriptedTransport(default=ConnectionRefusedError(111, "Connection refused")) for name in NAMES}


def tripping(tmp_path: Path, cooldown_s: float) -> Config:
    """A provider's first failure crashes it and opens its circuit for `cooldown_s`."""
    cfg = config(tmp_path)
    breaker = attrs.evolve(cfg.engine.breaker, failures_to_crash=1, max_restarts=0, cooldown_s=cooldown_s)
    return attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, breaker=breaker))


@pytest.mark.trio
async def test_with_every_circuit_open_a_request_fails_at_once_with_retry_after(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    transports = refusing()
    async with Orchestrator.start(tripping(tmp_path, 100), transport_factory=scripted(transports)) as orch:
        with pytest.raises(StrategyUnavailable):
            await orch.generate(SIMPLE)
        await trio.sleep(1)
        assert {orch.health()[name]["state"] for name in NAMES} == {"open"}
        sent = sum(len(t.calls) for t in transports.values())
        first_back = min(float(orch.health()[name]["open_for_s"]) for name in NAMES)  # type: ignore[arg-type]
        start = trio.current_time()
        with pytest.raises(StrategyUnavailable, match=r"may take work again in 9\d\.\d s") as refused:
            await orch.generate(attrs.evolve(SIMPLE, request_id="later"))
        assert trio.current_time() - start <= 0.05
        assert refused.value.retry_after == pytest.approx(first_back, abs=0.01), "when the first cooldown ends"
        assert sum(len(t.calls) for t in transports.values()) == sent, "nothing is sent"


@pytest.mark.trio
async def test_no_backoff_is_slept_for_a_candidate_whose_circuit_is_open_again(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """After the cooldown every candidate's probe fails and opens its circuit for 20 s: a 1 s backoff cannot reach it."""
    async with Orchestrator.start(tripping(tmp_path, 10), transport_factory=scripted(refusing())) as orch:
        with pytest.raises(StrategyUnavailable):
            await orch.generate(SIMPLE)
        await trio.sleep(11)
        start = trio.current_time()
        with pytest.raises(StrategyUnavailable, match=r"Falcon Mamba 7B: circuit out for 20\.0 s, past the 1\.0 s") as failed:
            await orch.generate(attrs.evolve(SIMPLE, request_id="probes"))
        elapsed = trio.current_time() - start
    assert elapsed < 1.0, "failed at once instead of after 1 + 2 + 4 s of backoff"
    assert failed.value.retry_after == pytest.approx(20, abs=0.5)


@pytest.mark.trio
async def test_a_wave_against_providers_that_fail_fast_ends_within_one_retry_budget(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """200 requests at once, every provider refusing connections: each ends within 1 + 2 + 4 s of backoff."""
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(refusing())) as orch:
        start = trio.current_time()
        ended: list[float] = []

        async def one(number: int) -> None:
            with pytest.raises(StrategyUnavailable):
                await orch.generate(attrs.evolve(SIMPLE, request_id=f"w{number}"))
            ended.append(trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            for number in range(200):
                nursery.start_soon(one, number)
    assert len(ended) == 200 and max(ended) <= 7.0 + 0.1


@pytest.mark.trio
@pytest.mark.parametrize("tier", [None, "tier_1"])
@pytest.mark.parametrize(
    ("grids", "says"),
    [((((1, 2), (3,)),), "is ragged"), ((((12,),),), "is 12, colours are integers 0-9"),
     ((((1,) * 31,),), "above the 30x30 maximum"), ((((1,),),) * 101, "101 train pairs")],
)
async def test_a_malformed_task_is_refused_before_any_money_or_provider_whether_routed_or_pinned(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, tier: str | None, grids: tuple, says: str
) -> None:
    """Pinned to a tier, a task is not estimated, only rendered: it is checked all the same."""
    transports: dict[str, ScriptedTransport] = {}
    task = ArcTask("bad", tuple(ArcPair(grid, ((1,),)) for grid in grids), ())
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        with pytest.raises(InvalidRequest, match=re.escape(says)):
            await orch.generate(Request(task=task, tier=tier))
        budget = await orch.budget()
        calls = sum(len(t.calls) for t in transports.values())
        good = await orch.generate(Request(task=ArcTask("good", (ArcPair(((1,),), ((2,),)),), ()), tier=tier))
    assert budget.operations == 0 and calls == 0
    assert good.text, "the engine serves the next request"


@pytest.mark.trio
@pytest.mark.parametrize(
    ("late", "settled_each", "outstanding"),
    [(openai_ok(prompt=1000, completion=1000), True, 0), (openai_error(500), False, 0), (TimeoutError("read timed out"), False, 2)],
    ids=["answer: settled on its usage", "error status: released", "no answer: held"],
)
async def test_a_call_given_up_on_is_settled_by_its_late_answer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, late: object, settled_each: bool, outstanding: int
) -> None:
    """The attempt stops waiting at its timeout and holds the money (the provider may bill); when the provider's
    answer comes after all, the books follow it instead of waiting for `budget reconcile`."""
    transports = {"Qwen2.5-Coder": ScriptedTransport(default=late, delay=4.0)}  # type: ignore[arg-type]
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        request = Request.prompt("Fix the typo", tier="tier_1", attempt_timeout_s=1.0, deadline_s=2.5)
        with pytest.raises(StrategyUnavailable) as failed:
            await orch.generate(request)
        held = await orch.budget()
        await trio.sleep(5)
        after = await orch.budget()
        late = orch.routing_stats()["late_answers"]
        metrics = await render_metrics(orch)
    attempts = len(transports["Qwen2.5-Coder"].calls)
    assert late == ({} if outstanding else {"settle" if settled_each else "release": attempts})
    shown = {"settle": 0, "release": 0, **late}  # type: ignore[dict-item]
    assert all(f'orchestrator_late_answers_total{{action="{a}"}} {n}' in metrics for a, n in shown.items())
    price = config(tmp_path).engine.provider("Qwen2.5-Coder")
    cost = -(-1000 * price.input_price_nd_per_mtok // 10**6) - (-1000 * price.output_price_nd_per_mtok // 10**6)
    assert attempts == 2 and "deadline passed while the provider was answering" in str(failed.value)
    assert held.outstanding == 2 and held.unreconciled_nd > 0, "held while nobody knows"
    assert after.outstanding == outstanding and after.settled_nd == (attempts * cost if settled_each else 0)
    assert after.unreconciled_nd == (held.unreconciled_nd if outstanding else 0)


@pytest.mark.trio
async def test_a_request_every_window_refuses_is_the_callers_to_fix_not_a_503(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Every provider answers that the prompt and max_tokens do not fit: retrying cannot help (400, not 503)."""
    too_long = openai_error(400, code="context_length_exceeded", message="maximum context length is 8192 tokens")
    transports = {name: ScriptedTransport(default=too_long) for name in
                  ("Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B")}
    async with Orchestrator.start(config(tmp_path), transport_factory=scripted(transports)) as orch:
        with pytest.raises(InvalidRequest, match="too long for every candidate's context window") as refused:
            await orch.generate(Request.prompt("Summarise this long log", max_tokens=1000))
        budget = await orch.budget()
    assert refused.value.status == 400 and "context_length" in str(refused.value)
    assert budget.outstanding == 0 and budget.settled_nd == 0, "a refused call is not billed"

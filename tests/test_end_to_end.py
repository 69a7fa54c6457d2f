"""One request through the whole path (router, ledger, cache, provider over real loopback
HTTP to the simulator, telemetry) on both anyio backends, and the blocking facade; one
test scripts the providers instead, to make the decided one fail."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import attrs
import pytest

from actors.errors import BudgetExceeded, InvalidRequest, StrategyUnavailable
from actors.messages import ArcTask, Request
from orchestrator import BlockingOrchestrator, Orchestrator, load_config
from orchestrator.config import Config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TASK = ArcTask.from_lists(
    "flip",
    [
        {"input": [[1, 2], [3, 4]], "output": [[2, 1], [4, 3]]},
        {"input": [[5, 6, 7]], "output": [[7, 6, 5]]},
    ],
    [[[1, 0], [0, 1]]],
)


def simulated(tmp_path: Path, **engine_changes: object) -> Config:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "state", environ={})
    if engine_changes:
        config = attrs.evolve(config, engine=attrs.evolve(config.engine, **engine_changes))
    return config


@pytest.mark.anyio
async def test_one_arc_request_travels_the_whole_path(anyio_backend: str, tmp_path: Path) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        result = await orch.generate(Request(task=TASK))
        budget = await orch.budget()
    assert "def transform" in result.text
    assert result.tier == result.decision.tier
    assert result.input_tokens > 0 and 0 < result.output_tokens <= 4096
    assert result.cost_nd > 0
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert 0.0 <= result.score <= 1.0 and result.level in ("simple", "medium", "complex", "breakthrough")
    assert result.reasons
    assert budget.settled_nd == result.cost_nd
    assert budget.outstanding == 0 and budget.reserved_nd == 0


@pytest.mark.anyio
async def test_a_batch_costs_exactly_what_the_ledger_settled(anyio_backend: str, tmp_path: Path) -> None:
    requests = [Request.prompt(f"Write a function that returns {i} squared") for i in range(30)]
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        results = await orch.generate_batch(requests, concurrency=8)
        budget = await orch.budget()
    assert all(r.text for r in results)  # type: ignore[union-attr]
    assert sum(r.cost_nd for r in results) == budget.settled_nd  # type: ignore[union-attr]
    assert budget.outstanding == 0


@pytest.mark.anyio
async def test_the_second_run_is_served_from_the_cache_for_free(anyio_backend: str, tmp_path: Path) -> None:
    request = Request(task=TASK, request_id="first")
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        first = await orch.generate(request)
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        again = await orch.generate(attrs.evolve(request, request_id="again"))
        other_sample = await orch.generate(attrs.evolve(request, request_id="sample-1", sample_index=1))
        stats = await orch.cache_stats()
    assert again.cached and again.cost_nd == 0 and again.saved_nd == first.cost_nd
    assert again.text == first.text
    assert not other_sample.cached and other_sample.cost_nd > 0
    assert stats.hits == 1 and stats.saved_nd == first.cost_nd


@pytest.mark.anyio
async def test_budget_denial_happens_before_any_http_call(anyio_backend: str, tmp_path: Path) -> None:
    config = simulated(tmp_path)
    config = attrs.evolve(
        config,
        engine=attrs.evolve(
            config.engine,
            ledger=attrs.evolve(config.engine.ledger, limit_nd=10),
            router=attrs.evolve(
                config.engine.router,
                selection=attrs.evolve(config.engine.router.selection, downgrade_on_budget=False),
            ),
        ),
    )
    async with Orchestrator.start(config) as orch:
        with pytest.raises(BudgetExceeded) as caught:
            await orch.generate(Request(task=TASK))
        budget = await orch.budget()
    assert caught.value.code == "BUDGET_EXCEEDED" and caught.value.status == 402
    assert budget.settled_nd == 0 and budget.outstanding == 0


@pytest.mark.anyio
async def test_with_downgrade_the_free_local_tier_serves_when_nothing_paid_is_affordable(
    anyio_backend: str, tmp_path: Path
) -> None:
    config = simulated(tmp_path)
    config = attrs.evolve(
        config, engine=attrs.evolve(config.engine, ledger=attrs.evolve(config.engine.ledger, limit_nd=10))
    )
    async with Orchestrator.start(config) as orch:
        result = await orch.generate(Request(task=TASK))
    assert result.tier == "fallback" and result.cost_nd == 0
    assert "budget" in " ".join(a.detail for a in result.attempts) or result.provider == "Falcon Mamba 7B"


@pytest.mark.anyio
async def test_every_provider_down_gives_503_promptly(anyio_backend: str, tmp_path: Path) -> None:
    config = simulated(tmp_path)
    dead = tuple(attrs.evolve(p, base_url="http://127.0.0.1:9/v1") for p in config.engine.providers)
    fast = attrs.evolve(config.engine.retry, initial_s=0.01)
    config = attrs.evolve(config, engine=attrs.evolve(config.engine, providers=dead, retry=fast))
    async with Orchestrator.start(config) as orch:
        started = time.monotonic()
        with pytest.raises(StrategyUnavailable) as caught:
            await orch.generate(Request(task=TASK))
        elapsed = time.monotonic() - started
        budget = await orch.budget()
    assert caught.value.status == 503
    assert elapsed < 5, "no minutes of retries when nothing can answer"
    assert budget.outstanding == 0 and budget.settled_nd == 0, "a refused connection sent nothing: released"
    assert "connection failed" in str(caught.value), "the cause is named"


def test_blocking_facade_serves_plain_synchronous_code(tmp_path: Path) -> None:
    with BlockingOrchestrator.start(simulated(tmp_path)) as orch:
        result = orch.generate(Request.prompt("Fix the typo in README.md"))
        orch.generation(3)
        orch.reload_router_model()
        orch.feedback(result.request_id, 1.0)
        with pytest.raises(InvalidRequest, match="a generation is a whole number"):
            orch.generation(-1)
        results = orch.generate_batch([Request.prompt(f"rename variable {i}") for i in range(5)])
        stats = orch.routing_stats()
    assert result.level == "simple" and result.tier == "tier_1"
    assert len(results) == 5
    assert stats["decisions"] == 6 and stats["model_reloads"] == 1


def test_embedding_in_a_trio_program_uses_the_bridge(tmp_path: Path) -> None:
    import trio

    async def main() -> str:
        async with Orchestrator.start(simulated(tmp_path)) as orch:
            return (await orch.generate(Request(task=TASK))).text

    assert "def transform" in trio.run(main)


def test_shutdown_leaves_no_thread_behind(tmp_path: Path) -> None:
    import threading

    before = {t.name for t in threading.enumerate()}

    async def main() -> None:
        async with Orchestrator.start(simulated(tmp_path)) as orch:
            await orch.generate(Request(task=TASK))

    anyio.run(main, backend="trio")
    time.sleep(0.05)
    leftover = {t.name for t in threading.enumerate()} - before
    assert not {name for name in leftover if name in ("orchestrator-http", "simulator")}


@pytest.mark.anyio
async def test_cache_policies_use_refresh_and_off(anyio_backend: str, tmp_path: Path) -> None:
    from actors.messages import CachePolicy

    base = Request(task=TASK, request_id="a", sample_index=0)
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        first = await orch.generate(attrs.evolve(base, cache=CachePolicy.OFF))
        second = await orch.generate(attrs.evolve(base, request_id="b"))
        refreshed = await orch.generate(attrs.evolve(base, request_id="c", cache=CachePolicy.REFRESH))
        used = await orch.generate(attrs.evolve(base, request_id="d"))
        stats = await orch.cache_stats()
    assert not first.cached and not second.cached, "OFF neither read nor wrote"
    assert not refreshed.cached, "REFRESH does not read"
    assert used.cached and used.saved_nd == refreshed.cost_nd
    assert stats.hits == 1 and stats.misses == 1


@pytest.mark.anyio
async def test_a_similar_request_is_served_when_allowed(anyio_backend: str, tmp_path: Path) -> None:
    prompt = "Write a Python function that mirrors each row of a grid from left to right, keeping colours. " * 2
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        first = await orch.generate(Request.prompt(prompt, allow_similar=True))
        near = await orch.generate(Request.prompt(prompt.replace("keeping colours", "keeping the colours"), allow_similar=True))
        strict = await orch.generate(Request.prompt(prompt.replace("keeping colours", "keeping the colours") + " "))
    assert near.cached and near.similarity is not None and near.similarity >= 0.85 and near.text == first.text
    assert not strict.cached


@pytest.mark.anyio
async def test_freeze_gc_freezes_what_start_up_made_and_quiets_the_collector_until_stop(anyio_backend: str, tmp_path: Path) -> None:
    import gc

    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with Orchestrator.start(simulated(tmp_path), freeze_gc=True) as orch:
        frozen = gc.get_freeze_count()
        during = gc.get_threshold()
        result = await orch.generate(Request(task=TASK))
    assert frozen > 0 and "def transform" in result.text
    assert during[0] >= 10_000 and during[1:] == before[1:], "young collections are rarer while it runs"
    assert gc.get_freeze_count() == 0, "thawed at stop: an embedding application gets its collector back"
    assert gc.get_threshold() == before, "and its collection thresholds"


@pytest.mark.anyio
async def test_an_answer_from_a_fallback_model_is_not_cached_as_the_decided_models(
    anyio_backend: str, tmp_path: Path
) -> None:
    """The cache key names the model that answered: when the decided model fails and another
    answers, that answer must not come back later as if the decided model had given it."""
    from actors.telemetry.events import FallbackTaken
    from actors.telemetry.log import read_events
    from tests.fakes import ScriptedTransport, openai_error, openai_ok

    config = simulated(tmp_path)
    decided = config.engine.router.tiers[0]
    failing = decided.providers[0]

    def transport(settings: object, _loop: object) -> ScriptedTransport:
        return ScriptedTransport(default=openai_error(500) if settings.name == failing else openai_ok())  # type: ignore[attr-defined]

    request = Request.prompt("Fix the typo in README.md", tier=decided.name, substitute=True, sample_index=0)
    async with Orchestrator.start(config, transport_factory=transport) as orch:
        first = await orch.generate(request)
        second = await orch.generate(attrs.evolve(request, request_id="again"))
    assert first.provider != failing and not first.cached
    assert not second.cached and second.provider != failing
    events = [e for e in read_events(tmp_path / "state" / "telemetry") if isinstance(e, FallbackTaken)]
    for result in (first, second):
        hops = [(e.from_provider, e.to_provider) for e in events if e.request_id == result.request_id]
        assert hops[0][0] == failing and hops[-1][1] == result.provider, "the log names where each fallback went"
        assert all(went == came for (_, went), (came, _) in zip(hops, hops[1:]))

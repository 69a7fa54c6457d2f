"""The GA API: one stagnation threshold, fresh samples per generation, failures returned, budgets.

Against the simulator over real loopback HTTP.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from actors.errors import BudgetExceeded
from actors.messages import ArcTask, Request, Result
from orchestrator import BlockingOrchestrator, Orchestrator
from orchestrator.evolution import EvolutionHooks
from tests.test_end_to_end import TASK, simulated

PARENT = "def transform(grid):\n    return grid\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_crossing_the_stagnation_threshold_escalates_the_tier(anyio_backend: str, tmp_path: Path) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        hooks = EvolutionHooks(orch)
        threshold = hooks.stagnation_threshold
        assert threshold == orch.engine.router.selection.stagnation_threshold, "one threshold everywhere"
        assert not hooks.should_mutate(threshold - 1) and hooks.should_mutate(threshold)
        calm = await hooks.mutate(TASK, PARENT, stagnant_generations=0, generation=1, samples=1)
        stuck = await hooks.mutate(TASK, PARENT, stagnant_generations=threshold, generation=2, samples=1)
        reasons = orch.routing_stats()
    paid = [t.name for t in orch.engine.router.tiers if not t.local]
    assert paid.index(stuck[0].tier) == paid.index(calm[0].tier) + 1
    assert reasons["tiers"][stuck[0].tier] >= 1  # type: ignore[index]


@pytest.mark.anyio
async def test_a_new_generation_never_reads_an_old_generations_answer(anyio_backend: str, tmp_path: Path) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        hooks = EvolutionHooks(orch, run_id="run1")
        first = await hooks.mutate(TASK, PARENT, stagnant_generations=0, generation=1, samples=2)
        second = await hooks.mutate(TASK, PARENT, stagnant_generations=0, generation=2, samples=2)
    assert all(c.ok and c.cost_nd > 0 for c in first + second), "every mutation is a fresh, paid sample"
    assert all("-run1-" not in c.request_id and c.request_id.startswith("run1-mutate-") for c in first + second)
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        hooks = EvolutionHooks(orch, run_id="run2")
        replayed = await hooks.mutate(TASK, PARENT, stagnant_generations=0, generation=1, samples=2)
    assert [c.program for c in replayed] == [c.program for c in first]
    assert all(c.cost_nd == 0 for c in replayed), "re-running the experiment replays it from the cache"


@pytest.mark.anyio
async def test_failures_come_back_as_candidates_and_a_call_budget_stops_asking(anyio_backend: str, tmp_path: Path) -> None:
    config = simulated(tmp_path)
    tiny = attrs.evolve(config, engine=attrs.evolve(
        config.engine, ledger=attrs.evolve(config.engine.ledger, limit_nd=1000),
        router=attrs.evolve(config.engine.router, tiers=tuple(t for t in config.engine.router.tiers if not t.local)),
    ))
    async with Orchestrator.start(tiny) as orch:
        seeded = await EvolutionHooks(orch).seed(TASK, population_size=15)
    assert len(seeded) == 3 and all(isinstance(c.error, BudgetExceeded) for c in seeded)
    async with Orchestrator.start(simulated(tmp_path / "b")) as orch:
        capped = await EvolutionHooks(orch).mutate(TASK, PARENT, stagnant_generations=0, generation=1, samples=4,
                                                   budget_nd=1)
    assert capped[0].ok and all(isinstance(c.error, BudgetExceeded) for c in capped[1:])
    assert "budget of 1 nd is spent" in str(capped[1].error)


@pytest.mark.anyio
async def test_results_can_be_taken_as_they_complete(anyio_backend: str, tmp_path: Path) -> None:
    requests = [Request.prompt(f"write helper {i}") for i in range(6)]
    seen = []
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        async with orch.as_completed(requests, concurrency=3) as results:
            async for index, outcome in results:
                seen.append(index)
                assert isinstance(outcome, Result)
    assert sorted(seen) == list(range(6))


def test_the_blocking_facade_offers_the_same_hooks(tmp_path: Path) -> None:
    task = ArcTask.from_lists("t", [{"input": [[1]], "output": [[1]]}])
    with BlockingOrchestrator.start(simulated(tmp_path)) as orch:
        decision = orch.decide(Request(task=task))
        done: list[int] = []
        orch.generate_batch([Request.prompt("a"), Request.prompt("b")], on_done=lambda i, _: done.append(i))
        completed = [index for index, _ in orch.iter_completed([Request.prompt("c"), Request.prompt("d")])]
        verified = orch.generate_verified(Request.prompt("e"), lambda result: True)
    assert decision.tier and sorted(done) == [0, 1] and sorted(completed) == [0, 1]
    assert verified.accepted and len(verified.stages) == 1

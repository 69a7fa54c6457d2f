"""A caller's mistake with the embedded API is a typed error naming it, raised before anything is spent.

Against the simulator over real loopback HTTP.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actors.errors import ActorStopped, InvalidRequest
from actors.messages import Request
from orchestrator import BlockingOrchestrator, Orchestrator
from orchestrator.cascade import verify
from orchestrator.evolution import EvolutionHooks, EvolutionSettings
from tests.test_end_to_end import TASK, simulated

PROMPTS = [Request.prompt(f"fix the off-by-one in loop {i}") for i in range(3)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_what_is_not_a_request_is_refused_by_name(anyio_backend: str, tmp_path: Path) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        with pytest.raises(InvalidRequest, match=r"^generate: expected a Request .*got dict$"):
            await orch.generate({"prompt": "hi"})  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match=r"^decide: expected a Request .*got str$"):
            orch.decide("hi")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match=r"^forecast: item 0: expected a Request .*got str$"):
            await orch.forecast(["hi"])  # type: ignore[list-item]
        with pytest.raises(InvalidRequest, match=r"^generate_batch: expected an iterable of Requests, got Request$"):
            await orch.generate_batch(PROMPTS[0])  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_batch_with_a_stray_item_fails_whole_having_spent_nothing(anyio_backend: str, tmp_path: Path) -> None:
    """It ended in an ExceptionGroup of an AttributeError, after the requests before it had been paid for."""
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        with pytest.raises(InvalidRequest, match=r"^generate_batch: item 1: expected a Request .*got dict$"):
            await orch.generate_batch([PROMPTS[0], {"prompt": "hi"}, PROMPTS[1]])  # type: ignore[list-item]
        status = await orch.budget()
    assert status.settled_nd == 0 and status.reserved_nd == 0


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
async def test_a_batch_concurrency_below_one_is_refused(anyio_backend: str, tmp_path: Path, concurrency: Any) -> None:
    """-1 returned an empty list for a batch of three: every request silently dropped."""
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        with pytest.raises(InvalidRequest, match=r"concurrency must be a whole number from 1"):
            await orch.generate_batch(PROMPTS, concurrency=concurrency)
        with pytest.raises(InvalidRequest, match=r"concurrency must be a whole number from 1"):
            async with orch.as_completed(PROMPTS, concurrency=concurrency):
                pass
        assert len(await orch.generate_batch(PROMPTS, concurrency=None)) == 3


@pytest.mark.anyio
@pytest.mark.parametrize(("options", "says"), [
    ({"max_depth": 0}, "max_depth must be a whole number from 1, got 0"),
    ({"max_depth": -1}, "max_depth must be a whole number from 1, got -1"),  # sliced the ladder from its end
    ({"accept": float("nan")}, "accept must be a number from 0 to 1, got nan"),  # never reached: every stage bought
    ({"accept": 1.5}, "accept must be a number from 0 to 1"),
    ({"budget_nd": -5}, "budget_nd must be whole nanodollars from 0"),
    ({"min_success": 2}, "min_success must be a number from 0 to 1"),
])
async def test_cascade_options_that_would_change_what_is_paid_are_refused(
    anyio_backend: str, tmp_path: Path, options: dict[str, Any], says: str
) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        with pytest.raises(InvalidRequest, match=says):
            await orch.generate_verified(PROMPTS[0], lambda result: True, **options)
        status = await orch.budget()
    assert status.settled_nd == 0 and status.reserved_nd == 0


RESULT: Any = object()
"""What the verifier is shown does not matter here: these verifiers answer without looking."""


@pytest.mark.anyio
@pytest.mark.parametrize(("verdict", "score", "detail"), [
    (np.float32(0.75), 0.75, ""),
    (np.int64(1), 1.0, ""),
    (True, 1.0, ""),
    (7, 1.0, ""),
    ("yes", 0.0, "verifier returned 'yes', not a bool or a number in [0, 1]"),
    (float("nan"), 0.0, "verifier returned nan, not a bool or a number in [0, 1]"),
    (None, 0.0, "verifier returned None"),
])
async def test_a_verdict_is_any_real_number_and_anything_else_a_rejection_naming_it(
    anyio_backend: str, verdict: object, score: float, detail: str
) -> None:
    """A str verdict raised ValueError out of the cascade; a numpy fitness must keep counting."""
    got, why = await verify(lambda result: verdict, RESULT)  # type: ignore[arg-type, return-value]
    assert got == pytest.approx(score) and why.startswith(detail)


@pytest.mark.parametrize(("settings", "says"), [
    ({"llm_seed_ratio": float("nan")}, "llm_seed_ratio must be a number from 0 to 1, got nan"),
    ({"llm_seed_ratio": 5}, "llm_seed_ratio must be a number from 0 to 1, got 5"),
    ({"llm_seed_ratio": -0.2}, "got -0.2"),
    ({"mutation_batch": 0}, "mutation_batch must be a whole number from 1, got 0"),
    ({"mutation_temperature": 3.0}, "mutation_temperature must be a number from 0 to 2"),
])
def test_evolution_settings_that_ask_for_no_sample_or_too_many_are_refused(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        EvolutionSettings(**settings)


@pytest.mark.anyio
async def test_a_population_or_sample_count_below_its_floor_is_refused(anyio_backend: str, tmp_path: Path) -> None:
    """seed(population_size=-5) and mutate(samples=-3) returned no candidate at all; samples=0 the default batch."""
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        hooks = EvolutionHooks(orch)
        with pytest.raises(InvalidRequest, match="population_size must be a whole number from 0, got -5"):
            await hooks.seed(TASK, -5)
        for samples in (0, -3):
            with pytest.raises(InvalidRequest, match=f"samples must be a whole number from 1, got {samples}"):
                await hooks.mutate(TASK, "def transform(g): return g", stagnant_generations=0, generation=1,
                                   samples=samples)
        with pytest.raises(InvalidRequest, match="generation must be a whole number from 0, got -1"):
            await hooks.mutate(TASK, "def transform(g): return g", stagnant_generations=0, generation=-1)
        assert await hooks.seed(TASK, 0) == []
        status = await orch.budget()
    assert status.settled_nd == 0 and status.reserved_nd == 0


def _finished_within(seconds: float, work: Callable[[], object]) -> list[object]:
    """`work`'s result or exception, from a thread given `seconds` (a hang, the defect here, fails the test)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "still waiting"
    return outcome


def test_the_blocking_facade_says_it_has_stopped_and_never_waits_for_a_refused_batch(tmp_path: Path) -> None:
    """iter_completed waited for ever on a batch refused whole; after the block, calls raised the portal's
    RuntimeError ("This portal is not running")."""
    with BlockingOrchestrator.start(simulated(tmp_path)) as orch:
        [refused] = _finished_within(30, lambda: list(orch.iter_completed([PROMPTS[0], "hi"])))  # type: ignore[list-item]
        assert isinstance(refused, InvalidRequest) and "iter_completed" not in str(refused)
        assert "generate_batch: item 1: expected a Request" in str(refused)
        [results] = _finished_within(30, lambda: sorted(i for i, _ in orch.iter_completed(PROMPTS)))
        assert results == [0, 1, 2]
    for call in (lambda: orch.generate(PROMPTS[0]), orch.budget, lambda: orch.feedback("r", 0.5),
                 lambda: list(orch.iter_completed(PROMPTS))):
        with pytest.raises(ActorStopped, match=r"the orchestrator has stopped: its `with BlockingOrchestrator"):
            call()


@pytest.mark.anyio
async def test_after_its_block_the_orchestrator_says_it_has_stopped(anyio_backend: str, tmp_path: Path) -> None:
    """generate failed as if the ledger were down (LedgerUnavailable) and feedback was dropped without a word."""
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        result = await orch.generate(PROMPTS[0])
    for call in (lambda: orch.generate(PROMPTS[1]), lambda: orch.generate_batch(PROMPTS), orch.budget,
                 lambda: orch.forecast(PROMPTS), orch.cache_stats):
        with pytest.raises(ActorStopped, match=r"the orchestrator has stopped: its `async with Orchestrator"):
            await call()
    with pytest.raises(ActorStopped, match="has stopped"):
        orch.feedback(result.request_id, 1.0)
    assert orch.decide(PROMPTS[1]).tier, "a decision needs no actor: it still answers"

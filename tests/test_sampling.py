"""Sampling semantics: identical requests are independent samples in a run, replayed free in a re-run.

Over real loopback HTTP to the simulator, on both backends. Single-flight: the same
sample asked twice at once costs one upstream call.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import attrs
import pytest

from actors.messages import Request, Result
from orchestrator import Orchestrator
from tests.test_end_to_end import simulated

PROMPT = "Write a function that reverses a linked list"


@pytest.mark.anyio
async def test_identical_requests_are_new_samples_in_a_run_and_free_in_a_rerun(anyio_backend: str, tmp_path: Path) -> None:
    async def run() -> list[Result]:
        async with Orchestrator.start(simulated(tmp_path)) as orch:
            return [await orch.generate(Request.prompt(PROMPT, temperature=0.7)) for _ in range(3)]

    first = await run()
    again = await run()
    assert [r.sample_index for r in first] == [0, 1, 2]
    assert all(r.cost_nd > 0 and not r.cached for r in first), "each sample is a paid call"
    assert [r.sample_index for r in again] == [0, 1, 2]
    assert all(r.cached and r.cost_nd == 0 for r in again), "re-running the experiment replays it free"
    assert [r.text for r in again] == [r.text for r in first]


@pytest.mark.anyio
async def test_each_prompt_counts_its_own_samples(anyio_backend: str, tmp_path: Path) -> None:
    other = "Write a function that merges two sorted lists"
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        interleaved = [await orch.generate(Request.prompt(text, temperature=0.7)) for text in (PROMPT, other) * 3]
    assert [r.sample_index for r in interleaved] == [0, 0, 1, 1, 2, 2]


@pytest.mark.anyio
async def test_temperature_zero_is_one_answer_and_an_explicit_sample_is_honoured(anyio_backend: str, tmp_path: Path) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        cold = await orch.generate(Request.prompt(PROMPT, temperature=0.0))
        warm = await orch.generate(Request.prompt(PROMPT, temperature=0.0))
        pinned = await orch.generate(Request.prompt(PROMPT, temperature=0.7, sample_index=5))
        pinned_again = await orch.generate(Request.prompt(PROMPT, temperature=0.7, sample_index=5))
    assert not cold.cached and warm.cached and warm.sample_index == cold.sample_index == 0
    assert pinned.sample_index == 5 and not pinned.cached and pinned_again.cached


@pytest.mark.anyio
async def test_the_same_sample_in_flight_twice_makes_one_upstream_call(anyio_backend: str, tmp_path: Path) -> None:
    results: list[Result] = []
    request = Request.prompt(PROMPT, sample_index=0)
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(lambda i=i: _collect(orch, attrs.evolve(request, request_id=f"r{i}"), results))
        budget = await orch.budget()
    paid = [r for r in results if r.cost_nd]
    assert len(results) == 5 and len(paid) == 1, "one upstream call, shared"
    assert budget.settled_nd == paid[0].cost_nd
    assert {r.text for r in results} == {paid[0].text}


async def _collect(orch: Orchestrator, request: Request, into: list[Result]) -> None:
    into.append(await orch.generate(request))

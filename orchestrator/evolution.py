"""Hooks for an evolution engine: LLM population seeding, LLM-guided mutation, fitness feedback.

The story's evolution config asks for `llm_seed_ratio` (a share of the initial
population written by the LLM) and LLM-guided mutation once the population
stagnates. Seeding asks for distinct samples (`sample_index` 0..k-1) of the same
task, so a re-run replays the same programs from the cache for free while a larger
population still gets fresh ones. Mutation passes the stagnation count, which the
router uses to escalate to a stronger tier. Fitness flows back with `feedback`, so
reports can say which tier produced the good programs per dollar.
"""

from __future__ import annotations

import math
import re

import attrs

from actors.errors import OrchestratorError
from actors.messages import ArcTask, ChatMessage, Request, Result
from actors.router.prompts import SYSTEM, render_arc_prompt
from orchestrator.api import Orchestrator

_CODE_BLOCK = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


@attrs.frozen
class EvolutionSettings:
    llm_seed_ratio: float = 0.2
    stagnation_trigger: int = 3
    mutation_batch: int = 4


@attrs.frozen
class Candidate:
    """A program the LLM wrote, with the request that produced it (for feedback)."""

    program: str
    request_id: str
    tier: str
    cost_nd: int


def extract_program(text: str) -> str:
    """The code in a completion: the first fenced block if any, else the whole text."""
    match = _CODE_BLOCK.search(text)
    return (match.group(1) if match else text).strip()


class EvolutionHooks:
    def __init__(self, orch: Orchestrator, settings: EvolutionSettings = EvolutionSettings()) -> None:
        self._orch = orch
        self.settings = settings

    def seed_count(self, population_size: int) -> int:
        return math.ceil(population_size * self.settings.llm_seed_ratio)

    async def seed(self, task: ArcTask, population_size: int) -> list[Candidate]:
        """LLM-written programs for the initial population; failures just seed fewer."""
        requests = [
            Request(
                task=task,
                sample_index=index,
                request_id=f"seed-{task.task_id}-{index}",
                metadata={"task_id": task.task_id, "purpose": "seed"},
            )
            for index in range(self.seed_count(population_size))
        ]
        return _candidates(await self._orch.generate_batch(requests))

    def should_mutate(self, stagnant_generations: int) -> bool:
        return stagnant_generations >= self.settings.stagnation_trigger

    async def mutate(
        self, task: ArcTask, parent: str, *, stagnant_generations: int, generation: int
    ) -> list[Candidate]:
        """Ask for improved variants of a parent program; stagnation escalates the tier."""
        prompt = render_arc_prompt(task)
        improve = ChatMessage(
            "user",
            prompt[1].content
            + "\n\nThis program is close but wrong; write an improved transform(grid):\n"
            + parent,
        )
        requests = [
            Request(
                messages=(ChatMessage("system", SYSTEM), improve),
                task=task,
                stagnation=stagnant_generations,
                sample_index=index,
                request_id=f"mutate-{task.task_id}-g{generation}-{index}",
                metadata={"task_id": task.task_id, "purpose": "mutation", "generation": str(generation)},
            )
            for index in range(self.settings.mutation_batch)
        ]
        return _candidates(await self._orch.generate_batch(requests))

    def feedback(self, candidate: Candidate, fitness: float) -> None:
        self._orch.feedback(candidate.request_id, fitness)


def _candidates(outcomes: list[Result | OrchestratorError]) -> list[Candidate]:
    return [
        Candidate(extract_program(o.text), o.request_id, o.tier, o.cost_nd)
        for o in outcomes
        if isinstance(o, Result)
    ]

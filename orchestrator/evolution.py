"""Hooks for an evolution engine: LLM population seeding, LLM-guided mutation, fitness feedback.

The story's evolution config asks for `llm_seed_ratio` (a share of the initial
population written by the LLM) and LLM-guided mutation once the population
stagnates. What the hooks promise:

- **One stagnation threshold.** `should_mutate` uses the router's own
  `routing.stagnation_threshold`: the generation the GA asks for help is the one at
  which the router escalates to a stronger tier (docs/ROUTING.md).
- **Fresh samples, free re-runs.** Requests carry the run's id, the generation and
  the purpose in their metadata and ids, and leave `sample_index` to the engine: the
  n-th identical request in a run is sample n, so a later generation never reads an
  earlier generation's answer, while re-running the same experiment replays it free.
- **Every candidate answers.** Each call returns one `Candidate` per requested sample:
  a program, or the typed error that prevented it (a budget, an outage) — nothing is
  swallowed.
- **Budget per generation.** `budget_nd` stops asking once a call has spent it; the
  samples not asked are returned as `BudgetExceeded` candidates.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence

import attrs

from actors.errors import BudgetExceeded, OrchestratorError
from actors.messages import ArcTask, ChatMessage, Request, Result
from actors.policy.prompts import SYSTEM, render_arc_prompt
from actors.validation import number_in, whole_number
from orchestrator.api import Orchestrator

_CODE_BLOCK = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


@attrs.frozen
class EvolutionSettings:
    llm_seed_ratio: float = 0.2
    mutation_batch: int = 4
    mutation_temperature: float | None = None
    """None keeps each tier's configured temperature."""

    def __attrs_post_init__(self) -> None:
        """A ratio past 1 or below 0 asks for more seeds than the population or silently none; a NaN one
        failed the first `seed` with a bare ValueError."""
        number_in("llm_seed_ratio", self.llm_seed_ratio, 0.0, 1.0)
        whole_number("mutation_batch", self.mutation_batch, 1)
        if self.mutation_temperature is not None:
            number_in("mutation_temperature", self.mutation_temperature, 0.0, 2.0, " (or None)")


@attrs.frozen
class Candidate:
    """One requested sample: the program the LLM wrote, or why there is none."""

    request_id: str
    program: str = ""
    tier: str = ""
    cost_nd: int = 0
    error: OrchestratorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def extract_program(text: str) -> str:
    """The code in a completion: the first fenced block if any, else the whole text."""
    match = _CODE_BLOCK.search(text)
    return (match.group(1) if match else text).strip()


class EvolutionHooks:
    def __init__(
        self, orch: Orchestrator, settings: EvolutionSettings = EvolutionSettings(), run_id: str | None = None
    ) -> None:
        self._orch = orch
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex[:12]

    @property
    def stagnation_threshold(self) -> int:
        return self._orch.engine.router.selection.stagnation_threshold

    def seed_count(self, population_size: int) -> int:
        return seed_count(self.settings, population_size)

    def should_mutate(self, stagnant_generations: int) -> bool:
        return stagnant_generations >= self.stagnation_threshold

    async def seed(self, task: ArcTask, population_size: int, *, budget_nd: int | None = None) -> list[Candidate]:
        """LLM-written programs for the initial population: `seed_count` samples of the task."""
        whole_number("population_size", population_size, 0)
        return await self._ask(seed_requests(self.settings, self.run_id, task, population_size), budget_nd)

    async def mutate(
        self,
        task: ArcTask,
        parent: str,
        *,
        stagnant_generations: int,
        generation: int,
        samples: int | None = None,
        temperature: float | None = None,
        budget_nd: int | None = None,
    ) -> list[Candidate]:
        """Improved variants of a parent program; the stagnation count lets the router escalate."""
        whole_number("generation", generation, 0)
        if samples is not None:
            whole_number("samples", samples, 1)  # 0 meant the default batch, -3 no sample at all
        requests = mutation_requests(self.settings, self.run_id, task, parent, stagnant_generations=stagnant_generations,
                                     generation=generation, samples=samples, temperature=temperature)
        return await self._ask(requests, budget_nd)

    def feedback(self, candidate: Candidate, fitness: float) -> None:
        """The candidate's fitness in [0, 1], for reports and the online learner."""
        if candidate.ok:
            self._orch.feedback(candidate.request_id, fitness)

    async def _ask(self, requests: Sequence[Request], budget_nd: int | None) -> list[Candidate]:
        if budget_nd is None:
            return [_candidate(r, o) for r, o in zip(requests, await self._orch.generate_batch(requests))]
        spent = 0
        out: list[Candidate] = []
        for request in requests:
            if spent >= budget_nd:
                out.append(Candidate(request.request_id, error=BudgetExceeded(
                    f"request {request.request_id}: this call's budget of {budget_nd} nd is spent ({spent} nd)",
                    remaining_nd=0,
                )))
                continue
            try:
                outcome: Result | OrchestratorError = await self._orch.generate(request)
            except OrchestratorError as exc:
                outcome = exc
            out.append(_candidate(request, outcome))
            spent += out[-1].cost_nd
        return out


def _candidate(request: Request, outcome: Result | OrchestratorError) -> Candidate:
    if isinstance(outcome, Result):
        return Candidate(request.request_id, extract_program(outcome.text), outcome.tier, outcome.cost_nd)
    return Candidate(request.request_id, error=outcome)


def seed_count(settings: EvolutionSettings, population_size: int) -> int:
    return math.ceil(population_size * settings.llm_seed_ratio)


def seed_requests(settings: EvolutionSettings, run_id: str, task: ArcTask, population_size: int) -> list[Request]:
    """The requests that seed a population: `seed_count` samples of the task."""
    return [
        Request(task=task, request_id=f"{run_id}-seed-{task.task_id}-{index}",
                metadata=_metadata(run_id, task, "seed", 0))
        for index in range(seed_count(settings, population_size))
    ]


def mutation_requests(
    settings: EvolutionSettings, run_id: str, task: ArcTask, parent: str, *, stagnant_generations: int,
    generation: int, samples: int | None = None, temperature: float | None = None,
) -> list[Request]:
    """The requests for improved variants of `parent`; the stagnation count lets the router escalate."""
    prompt = render_arc_prompt(task)
    improve = ChatMessage(
        "user", prompt[1].content + "\n\nThis program is close but wrong; write an improved transform(grid):\n" + parent,
    )
    return [
        Request(
            messages=(ChatMessage("system", SYSTEM), improve),
            task=task,
            stagnation=stagnant_generations,
            temperature=temperature if temperature is not None else settings.mutation_temperature,
            request_id=f"{run_id}-mutate-{task.task_id}-g{generation}-{index}",
            metadata=_metadata(run_id, task, "mutation", generation),
        )
        for index in range(samples or settings.mutation_batch)
    ]


def _metadata(run_id: str, task: ArcTask, purpose: str, generation: int) -> dict[str, str]:
    return {"task_id": task.task_id, "purpose": purpose, "generation": str(generation), "run_id": run_id}

"""A genetic algorithm over ARC programs, with the orchestrator embedded and a sandbox for fitness.

    python tools/arc_evolve.py                       # 5 tasks, population 20, 10 generations
    python tools/arc_evolve.py --tasks 20 --generations 50 --config simulated

Individuals are Python programs `transform(grid)`. Most of the initial population
are random compositions of grid primitives (flips, rotations, transposition, colour
swaps); `llm_seed_ratio` of it (the story's 0.2) is written by the LLM. Each
generation keeps the better half and mutates it; when the best fitness has not
improved for the router's stagnation threshold, the LLM is asked for improved
variants of the best program, with the stagnation count so the router escalates
tiers. Every model-written program runs in the sandbox (orchestrator/sandbox.py:
separate process, CPU/memory/wall limits, no network, scratch directory only); the
primitives are this file's own code and run in-process. Fitness is the share of
training cells a program gets right; it is fed back to the orchestrator.

On the shipped simulator the "LLM" writes programs with no skill: the fitness it
reaches comes from the primitives. Point --config at real providers to measure the
models.

With --online the router learns from that fitness while the GA runs (`routing.online`:
Thompson sampling per score band and tier), and the summary shows which tiers wrote
the LLM's programs in the first and the second half of the run, and what the learner
explored, exploited and believes. On the simulator no tier's programs are any good,
so the learner moves requests up the tiers; with real models it finds the cheapest
tier whose programs score.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections import Counter
from pathlib import Path

import anyio
import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.messages import ArcTask, Grid  # noqa: E402
from actors.money import format_usd  # noqa: E402
from orchestrator import Orchestrator, load_config  # noqa: E402
from orchestrator.config import default_config_path  # noqa: E402
from orchestrator.evolution import Candidate, EvolutionHooks, EvolutionSettings  # noqa: E402
from orchestrator.sandbox import Limits, run_program  # noqa: E402
from orchestrator.workload import arc_tasks  # noqa: E402

PRIMITIVES = {
    "flip_h": "[row[::-1] for row in g]",
    "flip_v": "[row[:] for row in g[::-1]]",
    "transpose": "[list(col) for col in zip(*g)]",
    "rot90": "[list(col) for col in zip(*g[::-1])]",
    "swap_colors": "[[{a: b, b: a}.get(c, c) for c in row] for row in g]",
}
CHECKPOINTS = (1, 10, 50)


@attrs.define
class Individual:
    source: str
    fitness: float = 0.0
    genome: tuple[tuple[str, int, int], ...] | None = None
    candidate: Candidate | None = None


def genome_source(genome: tuple[tuple[str, int, int], ...]) -> str:
    lines = ["def transform(grid):", "    g = [list(row) for row in grid]"]
    for name, a, b in genome:
        lines.append(f"    a, b = {a}, {b}")
        lines.append(f"    g = {PRIMITIVES[name]}")
    lines.append("    return g")
    return "\n".join(lines) + "\n"


def random_gene(rng: random.Random) -> tuple[str, int, int]:
    return rng.choice(list(PRIMITIVES)), rng.randrange(10), rng.randrange(10)


def cell_fitness(outputs: list[Grid | None], task: ArcTask) -> float:
    scores = []
    for got, pair in zip(outputs, task.train):
        want = pair.output
        if got is None or len(got) != len(want) or any(len(a) != len(b) for a, b in zip(got, want)):
            scores.append(0.0)
            continue
        cells = sum(len(row) for row in want)
        scores.append(sum(x == y for a, b in zip(got, want) for x, y in zip(a, b)) / cells)
    return statistics.fmean(scores) if scores else 0.0


def trusted_fitness(genome: tuple[tuple[str, int, int], ...], task: ArcTask) -> float:
    """The primitives are this file's code: run in-process, no sandbox needed."""
    namespace: dict[str, object] = {}
    exec(genome_source(genome), namespace)  # noqa: S102 - our own primitives, not model output
    transform = namespace["transform"]
    return cell_fitness([tuple(map(tuple, transform(p.input))) for p in task.train], task)  # type: ignore[operator]


async def sandboxed_fitness(source: str, task: ArcTask, limits: Limits) -> float:
    run = await run_program(source, [p.input for p in task.train], limits)
    return cell_fitness(list(run.outputs), task)


async def evolve(task: ArcTask, hooks: EvolutionHooks, args: argparse.Namespace, rng: random.Random,
                 limits: Limits) -> dict[str, object]:
    population: list[Individual] = []
    seeds = await hooks.seed(task, args.population)
    for candidate in seeds:
        if candidate.ok:
            score = await sandboxed_fitness(candidate.program, task, limits)
            hooks.feedback(candidate, score)
            population.append(Individual(candidate.program, score, candidate=candidate))
    failed = [c for c in seeds if not c.ok]
    tiers = [(0, c.tier) for c in seeds if c.ok]
    while len(population) < args.population:
        genome = tuple(random_gene(rng) for _ in range(rng.randint(1, 3)))
        population.append(Individual(genome_source(genome), trusted_fitness(genome, task), genome))
    best, stagnant, history, llm_calls, costs = 0.0, 0, [], len(seeds), [sum(c.cost_nd for c in seeds)]
    for generation in range(1, args.generations + 1):
        population.sort(key=lambda ind: ind.fitness, reverse=True)
        survivors = population[: max(2, args.population // 2)]
        children = []
        for parent in survivors:
            if parent.genome is not None:
                genome = list(parent.genome)
                genome[rng.randrange(len(genome))] = random_gene(rng)
                if rng.random() < 0.3:
                    genome.append(random_gene(rng))
                children.append(Individual(genome_source(tuple(genome)), trusted_fitness(tuple(genome), task), tuple(genome)))
        population = survivors + children
        spent = 0
        if hooks.should_mutate(stagnant):
            variants = await hooks.mutate(task, survivors[0].source, stagnant_generations=stagnant, generation=generation,
                                          budget_nd=args.generation_budget_nd)
            llm_calls += len(variants)
            failed += [c for c in variants if not c.ok]
            tiers += [(generation, c.tier) for c in variants if c.ok]
            for candidate in variants:
                if candidate.ok:
                    score = await sandboxed_fitness(candidate.program, task, limits)
                    hooks.feedback(candidate, score)
                    population.append(Individual(candidate.program, score, candidate=candidate))
                    spent += candidate.cost_nd
        costs.append(spent)
        top = max(ind.fitness for ind in population)
        stagnant = 0 if top > best else stagnant + 1
        best = max(best, top)
        history.append(best)
        above = sum(ind.fitness > 0.3 for ind in population) / len(population)
        print(f"  {task.task_id} generation {generation:3d}: best {best:.3f}, {above:.0%} above 0.3, "
              f"stagnant {stagnant}, LLM programs {llm_calls}", file=sys.stderr)
    final_above = sum(ind.fitness > 0.3 for ind in population) / len(population)
    return {"task": task.task_id, "best": best, "history": history, "above_0_3": final_above,
            "llm_programs": llm_calls, "failed_requests": len(failed), "tiers": tiers, "cost_nd": sum(costs), "generations": len(costs) - 1}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    limits = Limits(cpu_s=1, wall_s=3.0, memory_mb=256)
    runs = []
    config = load_config(args.config or default_config_path(), state_dir=args.state_dir)
    if args.online:
        router = config.engine.router
        online = attrs.evolve(router.online, enabled=True)
        config = attrs.evolve(config, engine=attrs.evolve(config.engine, router=attrs.evolve(router, online=online)))
    async with Orchestrator.start(config) as orch:
        hooks = EvolutionHooks(orch, EvolutionSettings(llm_seed_ratio=args.llm_seed_ratio))
        print(f"run {hooks.run_id}: LLM help after {hooks.stagnation_threshold} stagnant generations "
              "(the router escalates at the same count)", file=sys.stderr)
        for task in arc_tasks(args.tasks):
            runs.append(await evolve(task, hooks, args, rng, limits))
        stats = orch.routing_stats()
        budget = await orch.budget()
    return {"runs": runs, "routing": stats, "settled_nd": budget.settled_nd}


def summary(outcome: dict[str, object], generations: int) -> str:
    runs: list[dict[str, object]] = outcome["runs"]  # type: ignore[assignment]
    lines = [f"{len(runs)} tasks, {generations} generations"]
    lines.append(f"population above 0.3 fitness   {statistics.fmean(r['above_0_3'] for r in runs):.0%}")  # type: ignore[misc]
    for checkpoint in CHECKPOINTS:
        if checkpoint <= generations:
            values = [r["history"][checkpoint - 1] for r in runs]  # type: ignore[index]
            lines.append(f"best fitness at generation {checkpoint:<3d}  {statistics.fmean(values):.3f} (mean over tasks)")
    lines.append(f"tasks above 0.8                {sum(r['best'] > 0.8 for r in runs)} of {len(runs)}")  # type: ignore[operator]
    total = sum(r["cost_nd"] for r in runs)  # type: ignore[misc]
    lines.append(f"cost                           {format_usd(total, 6)} in all, {format_usd(total // max(1, generations * len(runs)), 6)} per generation per task")
    routing: dict[str, object] = outcome["routing"]  # type: ignore[assignment]
    tiers: Counter[str] = Counter(routing["tiers"])  # type: ignore[arg-type]
    lines.append("requests per tier              " + ", ".join(f"{t} {n}" for t, n in sorted(tiers.items())))
    lines.append(f"failed LLM requests            {sum(r['failed_requests'] for r in runs)}")  # type: ignore[misc]
    if routing.get("online"):
        lines += _online_lines(runs, routing["online"], generations)  # type: ignore[arg-type]
    lines.append("note: on the shipped simulator the LLM's programs have no skill; the fitness comes from the primitives")
    return "\n".join(lines)


def _online_lines(runs: list[dict[str, object]], online: dict[str, object], generations: int) -> list[str]:
    """Which tiers wrote the programs early and late in each task's run, and what the learner did."""
    halves: list[Counter[str]] = [Counter(), Counter()]
    for run in runs:
        for generation, tier in run["tiers"]:  # type: ignore[attr-defined]
            halves[int(generation > generations // 2)][tier] += 1

    def shares(counts: Counter[str]) -> str:
        total = sum(counts.values())
        return ", ".join(f"{t} {n / total:.0%}" for t, n in sorted(counts.items())) if total else "none"

    lines = [
        f"LLM programs by tier, generations 0-{generations // 2}    {shares(halves[0])}",
        f"LLM programs by tier, generations {generations // 2 + 1}-{generations}   {shares(halves[1])}",
        f"online learner                 {online['observed']} verdicts; explored {online['explored']}, "
        f"exploited {online['exploited']}, left as configured {online['static']}",
    ]
    arms: dict[str, dict[str, float]] = online["arms"]  # type: ignore[assignment]
    for arm, belief in arms.items():
        lines.append(f"  band:tier {arm:<18} posterior mean {belief['mean']:.2f} after {belief['observations']:g} verdicts")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="a shipped config name or a path (default simulated)")
    parser.add_argument("--state-dir", default=None, help="the orchestrator's state directory")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--llm-seed-ratio", type=float, default=0.2)
    parser.add_argument("--generation-budget-nd", type=int, default=None, help="most a mutation call may spend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--online", action="store_true", help="let the router learn from the fitness while the GA runs")
    args = parser.parse_args()
    outcome = anyio.run(main_async, args)
    print(summary(outcome, args.generations))
    return 0


if __name__ == "__main__":
    sys.exit(main())

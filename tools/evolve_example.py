"""A small genetic algorithm over ARC programs, with the orchestrator embedded.

    python tools/evolve_example.py --tasks 5 --generations 15

Individuals are programs `transform(grid)`: random compositions of grid primitives,
plus the LLM-written share of the initial population (`llm_seed_ratio`). Fitness is
the share of training cells a program gets right. When the best fitness stagnates,
the LLM is asked for improved variants of the best program, with the stagnation
count (the router escalates tiers on it), and every LLM program's fitness is fed back
(`orch.feedback`) so `orchestrator report` can show which tier produced good programs.

LLM programs are executed with `exec` in a namespace without builtins beyond a few
safe ones. That is adequate for the simulator's programs; for real providers, run
candidates in a separate sandboxed process.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.messages import ArcTask, Grid  # noqa: E402
from orchestrator import Orchestrator  # noqa: E402
from orchestrator.evolution import Candidate, EvolutionHooks, EvolutionSettings  # noqa: E402
from orchestrator.workload import arc_tasks  # noqa: E402

Program = Callable[[list[list[int]]], list[list[int]]]
PRIMITIVES: dict[str, Program] = {
    "identity": lambda g: [row[:] for row in g],
    "flip_h": lambda g: [row[::-1] for row in g],
    "flip_v": lambda g: [row[:] for row in g[::-1]],
    "transpose": lambda g: [list(col) for col in zip(*g)],
    "rot90": lambda g: [list(col) for col in zip(*g[::-1])],
}
SAFE_BUILTINS = {"len": len, "range": range, "list": list, "zip": zip, "max": max, "min": min,
                 "sum": sum, "enumerate": enumerate, "set": set, "sorted": sorted, "tuple": tuple,
                 "reversed": reversed, "abs": abs, "dict": dict, "any": any, "all": all}


def compile_program(source: str) -> Program | None:
    namespace: dict[str, object] = {"__builtins__": SAFE_BUILTINS}
    try:
        exec(compile(source, "<llm>", "exec"), namespace)  # noqa: S102 - see module docstring
    except Exception:  # noqa: BLE001 - a program that does not compile has fitness 0
        return None
    function = namespace.get("transform")
    return function if callable(function) else None  # type: ignore[return-value]


def genome_program(genome: tuple[str, ...]) -> Program:
    def run(grid: list[list[int]]) -> list[list[int]]:
        for name in genome:
            grid = PRIMITIVES[name](grid)
        return grid

    return run


def fitness(program: Program | None, task: ArcTask) -> float:
    if program is None:
        return 0.0
    right = total = 0
    for pair in task.train:
        expected: Grid = pair.output
        total += sum(len(row) for row in expected)
        try:
            got = program([list(row) for row in pair.input])
        except Exception:  # noqa: BLE001 - a crashing program scores zero on this pair
            continue
        if not isinstance(got, list) or len(got) != len(expected):
            continue
        for got_row, want_row in zip(got, expected):
            if isinstance(got_row, list) and len(got_row) == len(want_row):
                right += sum(int(a == b) for a, b in zip(got_row, want_row))
    return right / total if total else 0.0


async def evolve(task: ArcTask, hooks: EvolutionHooks, size: int, generations: int, rng: random.Random) -> dict[str, object]:
    seeded = await hooks.seed(task, size)
    population: list[tuple[float, object]] = []
    for candidate in seeded:
        score = fitness(compile_program(candidate.program), task)
        hooks.feedback(candidate, score)
        population.append((score, candidate))
    while len(population) < size:
        genome = tuple(rng.choice(list(PRIMITIVES)) for _ in range(rng.randint(1, 3)))
        population.append((fitness(genome_program(genome), task), genome))
    best, stagnant, llm_calls = max(s for s, _ in population), 0, len(seeded)
    for generation in range(generations):
        population.sort(key=lambda item: item[0], reverse=True)
        survivors = population[: size // 2]
        children = []
        for _, parent in survivors:
            if isinstance(parent, tuple):
                child = list(parent)
                child[rng.randrange(len(child))] = rng.choice(list(PRIMITIVES))
                children.append((fitness(genome_program(tuple(child)), task), tuple(child)))
        population = survivors + children
        if hooks.should_mutate(stagnant) and isinstance(survivors[0][1], Candidate):
            variants = await hooks.mutate(task, survivors[0][1].program, stagnant_generations=stagnant, generation=generation)
            llm_calls += len(variants)
            for candidate in variants:
                score = fitness(compile_program(candidate.program), task)
                hooks.feedback(candidate, score)
                population.append((score, candidate))
            stagnant = 0
        top = max(s for s, _ in population)
        stagnant = 0 if top > best else stagnant + 1
        best = max(best, top)
    return {"task": task.task_id, "best_fitness": round(best, 3), "llm_programs": llm_calls}


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    async with Orchestrator.start(args.config) as orch:
        hooks = EvolutionHooks(orch, EvolutionSettings(llm_seed_ratio=args.llm_seed_ratio))
        for task in arc_tasks(args.tasks):
            print(await evolve(task, hooks, args.population, args.generations, rng))
        print("routing:", orch.routing_stats())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--generations", type=int, default=15)
    parser.add_argument("--llm-seed-ratio", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    anyio.run(main_async, parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())

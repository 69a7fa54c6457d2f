"""`orchestrator forecast`: what a workload or a GA plan will cost, before any money is spent.

Routes every request with the router's estimator and selection (no call, no money,
nothing written), and prints per tier: requests, the expected cost (output lengths
from the telemetry history per model and kind, else the prior: half of `max_tokens`),
the worst case (what the ledger would reserve), the totals against the remaining
budget, and the share of requests that budget-downgrade would move. Exit 0 when the
worst case fits the remaining budget, 3 when it does not.

    orchestrator forecast --tasks 100
    orchestrator forecast --requests workload.jsonl --json
    orchestrator forecast --tasks 5 --population 20 --generations 20 --seed-ratio 0.2 --samples 4
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import attrs
import orjson

from actors.ledger.actor import open_read_only
from actors.ledger.postgres import PostgresBook
from actors.messages import ArcTask, Request
from actors.money import format_usd
from actors.settings import EngineSettings
from orchestrator.cli.options import float_range, int_range
from orchestrator.config import default_config_path, load_config
from orchestrator.evolution import EvolutionSettings, mutation_requests, seed_count, seed_requests
from orchestrator.forecast import Forecast, TokenHistory, forecast, route_offline
from orchestrator.tables import render_table
from orchestrator.workload import ARC_TRAINING_TASKS, arc_requests, arc_tasks, load_jsonl

EXIT_OVER_BUDGET = 3
MAX_PLAN_KINDS = 200_000
"""Kinds of request (a task's seeds, a task's stagnant generation) a GA plan may have: each is routed, ~70 µs."""
PLAN_PARENT = "def transform(grid):\n    g = [list(row) for row in grid]\n    return [row[::-1] for row in g]\n"
"""The parent program a planned mutation request carries (a short one, as the GA's primitives write)."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("forecast", help="expected and worst-case cost of a workload, per tier, before running it",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the ledger and the telemetry history live")
    parser.add_argument("--requests", type=Path, default=None, help="a JSONL workload, as `orchestrator run` takes")
    parser.add_argument("--tasks", type=int_range(1, ARC_TRAINING_TASKS), default=100, help="ARC training tasks")
    parser.add_argument("--population", type=int_range(1, 1_000_000), default=None,
                        help="with --generations: plan a GA run over the tasks instead of one request per task")
    parser.add_argument("--generations", type=int_range(0, 100_000), default=None)
    parser.add_argument("--seed-ratio", type=float_range(0.0, 1.0), default=0.2, help="share of the population the LLM seeds")
    parser.add_argument("--samples", type=int_range(1, 1_000), default=4, help="mutations asked per stagnant generation")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def stagnant_generations(engine: EngineSettings, generations: int) -> range:
    """The generations of a plan that stagnates from the start in which the router escalates: from the stagnation
    threshold on (the first generation has no stagnation count)."""
    return range(max(1, engine.router.selection.stagnation_threshold + 1), generations + 1)


def ga_plan(engine: EngineSettings, tasks: list[ArcTask], *, population: int, generations: int, seed_ratio: float,
            samples: int) -> tuple[list[Request], list[int]]:
    """The requests of a GA run, planned for the expensive case: it stagnates from the start.

    Each task's population is seeded (`ceil(population x seed_ratio)` requests), then
    every generation from the stagnation threshold on asks `samples` mutations with its
    stagnation count, so the router escalates as in a search that never improves: an
    upper plan of the mutation traffic, not a prediction of the search.

    Requests alike (a task's seeds; the samples of one generation) differ only in their
    ids, so each kind is one request and a count: a plan of millions of requests is
    routed as thousands (it was built and routed one by one: 100,000 seeds took 7 s).
    """
    settings = EvolutionSettings(llm_seed_ratio=seed_ratio, mutation_batch=samples)
    one = attrs.evolve(settings, llm_seed_ratio=1.0, mutation_batch=1)
    seeds = seed_count(settings, population)
    requests: list[Request] = []
    counts: list[int] = []
    for task in tasks:
        if seeds:
            requests += seed_requests(one, "plan", task, 1)
            counts.append(seeds)
        for generation in stagnant_generations(engine, generations):
            requests += mutation_requests(one, "plan", task, PLAN_PARENT, stagnant_generations=generation - 1,
                                          generation=generation)
            counts.append(samples)
    return requests, counts


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config or default_config_path(), state_dir=args.state_dir)
    engine = config.engine
    counts: list[int] | None = None
    if args.requests is not None:
        requests = load_jsonl(args.requests)
    elif args.population is not None or args.generations is not None:
        if args.population is None or args.generations is None:
            raise SystemExit("orchestrator forecast: a GA plan needs both --population and --generations")
        kinds = args.tasks * (1 + len(stagnant_generations(engine, args.generations)))
        if kinds > MAX_PLAN_KINDS:
            raise SystemExit(f"orchestrator forecast: the plan has {kinds:,} kinds of request (tasks x stagnant "
                             f"generations); at most {MAX_PLAN_KINDS:,} are forecast at once: plan fewer")
        requests, counts = ga_plan(engine, arc_tasks(args.tasks), population=args.population,
                                   generations=args.generations, seed_ratio=args.seed_ratio, samples=args.samples)
    else:
        requests = arc_requests(args.tasks)
    if engine.ledger.backend == "postgres":
        book = PostgresBook(engine.ledger, owner="orchestrator-cli")
        try:
            status = book.status()
        finally:
            book.close()
    else:
        status = open_read_only(engine.ledger).status()
    history = TokenHistory() if engine.telemetry.dir is None else TokenHistory.from_log(engine.telemetry.dir)
    result = forecast(route_offline(engine, requests, counts), history, limit_nd=status.limit_nd,
                      remaining_nd=status.remaining_nd)
    if args.json:
        print(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(result, len(requests) if counts is None else sum(counts)))
    return 0 if result.covered else EXIT_OVER_BUDGET


def render(result: Forecast, count: int) -> str:
    rows: list[tuple[object, ...]] = [
        (t.tier, t.requests, format_usd(t.expected_nd, 6), format_usd(t.worst_nd, 6),
         f"{t.from_history}/{t.requests}") for t in result.tiers
    ]
    rows.append(("total", count, format_usd(result.expected_nd, 6), format_usd(result.worst_nd, 6), ""))
    table = render_table(("tier", "requests", "expected", "worst case", "history/prior"), rows,
                         title=f"forecast of {count} requests (no call, no money)")
    verdict = "covers" if result.covered else "does NOT cover"
    return (f"{table}\n\nremaining budget {format_usd(result.remaining_nd, 6)} of {format_usd(result.limit_nd, 6)}: "
            f"it {verdict} the worst case; expected spending is {format_usd(result.expected_nd, 6)}"
            f"\nbudget-downgrade would move {result.downgrade_share:.1%} of the requests (expected)")

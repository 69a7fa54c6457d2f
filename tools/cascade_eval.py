"""The verifier cascade on a recorded-outcomes world: accuracy and cost against the baselines.

    python tools/cascade_eval.py                               # GSM8K, perfect and 90% verifiers
    python tools/cascade_eval.py --table T.csv --config C.yaml --verifier-accuracy 0.9

Every prompt of the outcome table goes through `orch.generate_verified`: the cheapest
tier first (the simulator answers with the recorded response of the model the tier
stands for), the verifier judges it, a rejection escalates to the next tier. A
perfect verifier knows from the table whether the answer was right; a verifier right
with probability p flips that verdict with probability 1 - p (seeded). Reported:
accuracy and cost of the cascade, of always-weak, of always-strong, and the oracle's
accuracy (right whenever any model was right).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import attrs
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.errors import ConfigError  # noqa: E402
from actors.messages import Request, Result  # noqa: E402
from actors.money import format_usd  # noqa: E402
from orchestrator import Orchestrator, load_config  # noqa: E402
from orchestrator.simulator.recorded import Ends, RecordedRun  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402

DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"


async def evaluate(run: RecordedRun, accuracy: float, seed: int, state: Path, start_at_cheapest: bool,
                   min_success: float | None = None) -> dict[str, float]:
    table = run.world.table
    totals = {"right": 0.0, "cost_nd": 0, "stages": 0}

    def verifier_for(row: int) -> object:
        rng = random.Random(f"{seed}/{row}")  # per prompt, so the verdicts do not depend on completion order

        def verify(result: Result) -> bool:
            name = run.world.table_model(result.model)
            score = table.scores[row, table.models.index(name)] if name is not None else 0.0
            truth = bool(score >= 0.5)
            return truth if rng.random() < accuracy else not truth

        return verify

    # Loaded afresh under `state`: the ledger's journal and the telemetry log are placed when a config
    # is loaded, so each cascade starts from a budget of its own and never charges the user's state.
    config = without_cache(load_config(run.config.source, state_dir=state))
    config = attrs.evolve(config, simulator=run.config.simulator)
    async with Orchestrator.start(config) as orch:
        limiter = anyio.Semaphore(32)

        async def one(row: int, prompt: str) -> None:
            async with limiter:
                verified = await orch.generate_verified(
                    Request.prompt(prompt, request_id=f"row-{row}"), verifier_for(row), max_depth=len(table.models),
                    start_at_cheapest=start_at_cheapest, min_success=min_success,
                )
            totals["cost_nd"] += verified.cost_nd
            totals["stages"] += len(verified.stages)
            if verified.result is not None:
                name = run.world.table_model(verified.result.model)
                score = table.scores[row, table.models.index(name)] if name is not None else 0.0
                totals["right"] += 0.0 if np.isnan(score) else float(score)

        async with anyio.create_task_group() as tg:
            for row, prompt in enumerate(table.prompts):
                tg.start_soon(one, row, prompt)
    n = len(table.prompts)
    return {"accuracy": totals["right"] / n, "cost_nd": totals["cost_nd"], "stages": totals["stages"] / n}


def without_cache(config: Any) -> Any:
    """A cascade must pay for every stage it runs: no answer may come from an earlier run's cache."""
    return attrs.evolve(config, engine=attrs.evolve(config.engine, cache=attrs.evolve(config.engine.cache, enabled=False)))


def recorded_ends(table_path: Path, config: Any) -> tuple[RecordedRun, Ends, np.ndarray] | None:
    """The recorded run of a table, its cheapest and strongest paid tiers, and its scores (a
    missing answer counts as wrong); None, said on stderr, when those tiers are not models of it."""
    run = RecordedRun.prepare(table_path, config)
    try:
        ends = run.ends()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    return run, ends, np.nan_to_num(run.world.table.scores, nan=0.0)


def _cost(cost_nd: int, strong_cost_nd: int) -> str:
    return f"{format_usd(cost_nd, 4)} ({cost_nd / strong_cost_nd:.1%} of always-strong)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--config", default="gsm8k_recorded")
    parser.add_argument("--verifier-accuracy", type=float, action="append", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-success", type=float, action="append", default=None,
                        help="also run the cheapest-first cascade skipping tiers predicted to succeed below this")
    args = parser.parse_args()
    if not args.table.exists():
        print(f"{args.table}: no such outcome table", file=sys.stderr)
        return 2
    prepared = recorded_ends(args.table, without_cache(load_config(args.config)))
    if prepared is None:
        return 2
    run, ends, scores = prepared
    table = run.world.table
    weak, strong, weak_costs, strong_costs = ends.weak, ends.strong, ends.weak_costs, ends.strong_costs
    strong_cost = int(strong_costs.sum())
    rows = [
        ("always-weak", f"{scores[:, weak].mean():.3f}", _cost(int(weak_costs.sum()), strong_cost), "1.00"),
        ("always-strong", f"{scores[:, strong].mean():.3f}", _cost(strong_cost, strong_cost), "1.00"),
    ]
    oracle = float(np.mean(scores.max(axis=1)))
    rows.append(("oracle (any model right)", f"{oracle:.3f}", "-", "-"))
    escalated = (scores[:, weak] < 0.5) & (scores[:, strong] >= 0.5)
    foresight = int(weak_costs.sum() + strong_costs[escalated].sum())
    rows.append(("bound: weak first, escalating only what the strong model gets right",
                 f"{float(np.mean(np.where(escalated, scores[:, strong], scores[:, weak]))):.3f}",
                 _cost(foresight, strong_cost), f"{1 + escalated.mean():.2f}"))
    for accuracy, cheapest in [(a, c) for a in (args.verifier_accuracy or [1.0, 0.9]) for c in (True, False)]:
        with tempfile.TemporaryDirectory() as state:
            got = anyio.run(evaluate, run, accuracy, args.seed, Path(state), cheapest)
        start = "cheapest first" if cheapest else "routed first"
        rows.append((f"cascade, {start}, verifier right {accuracy:.0%}", f"{got['accuracy']:.3f}",
                     _cost(int(got['cost_nd']), strong_cost),
                     f"{got['stages']:.2f}"))
    for floor in args.min_success or []:
        for accuracy in args.verifier_accuracy or [1.0, 0.9]:
            with tempfile.TemporaryDirectory() as state:
                got = anyio.run(evaluate, run, accuracy, args.seed, Path(state), True, floor)
            rows.append((f"cascade, cheapest first, skip below {floor:.2f}, verifier right {accuracy:.0%}",
                         f"{got['accuracy']:.3f}",
                         _cost(int(got['cost_nd']), strong_cost),
                         f"{got['stages']:.2f}"))
    print(render_table(("policy", "accuracy", "cost", "stages per prompt"), rows,
                       title=f"{len(table)} prompts of {args.table.name}, cheapest tier first, escalate on rejection"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

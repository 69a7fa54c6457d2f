"""A GA campaign under `budget.pacing`: each generation within its allotment plus carry-over.

    python tools/pacing_run.py                              # 20 generations, front_loaded, escalation at 18
    python tools/pacing_run.py --no-pacing                  # the same demand with no pacing
    python tools/pacing_run.py --schedule even --no-carry-over

On the shipped simulator, through the embedded API and the evolution hooks: seeding at
generation 0, then `--mutations` mutation requests per task per generation (more than a
generation's allotment pays for, so pacing is what stops them), and at
`--escalate-at` the population stagnates: the mutations carry the router's stagnation
threshold, escalate a tier and spend the reserve. For every generation the table shows
its allotment, the carry-over in, what it spent (from the candidates' costs, checked
against the ledger's generation scope) and whether it stayed within allotment plus
carry-over. Exit status 1 if any generation spent past that or the escalation found
no money (it was served only by the free local tier, or refused).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.ledger.pacing import generation_scope  # noqa: E402
from actors.money import format_usd  # noqa: E402
from orchestrator import Orchestrator, load_config  # noqa: E402
from orchestrator.config import default_config_path  # noqa: E402
from orchestrator.evolution import Candidate, EvolutionHooks, EvolutionSettings  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402
from orchestrator.workload import arc_tasks  # noqa: E402

PARENT = "def transform(grid):\n    return [row[::-1] for row in grid]\n"


def write_config(directory: Path, args: argparse.Namespace) -> Path:
    pacing = "" if args.no_pacing else (
        f"    pacing:\n      run: {args.run}\n      generations: {args.generations}\n"
        f"      schedule: {args.schedule}\n      carry_over: {'false' if args.no_carry_over else 'true'}\n"
        f"      reserve: {args.reserve}\n"
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "paced.yaml"
    path.write_text(
        f"extends: {default_config_path()}\nllm_routing:\n  optimization:\n    budget_limit: {args.budget}\n"
        f"  budget:\n    wait_s: 5\n{pacing}"
    )
    return path


async def campaign(args: argparse.Namespace, state: Path) -> dict[str, object]:
    config = load_config(write_config(state, args), state_dir=state / "state")
    plan = config.engine.ledger.pacing
    tasks = arc_tasks(args.tasks)
    rows: list[dict[str, object]] = []
    async with Orchestrator.start(config) as orch:
        hooks = EvolutionHooks(orch, EvolutionSettings(llm_seed_ratio=args.seed_ratio), run_id=args.run)
        threshold = hooks.stagnation_threshold
        spent_before = 0
        for generation in range(args.generations):
            orch.generation(generation)
            stagnant = threshold if generation == args.escalate_at else 0
            async with anyio.create_task_group() as tg:
                candidates: list[Candidate] = []

                async def ask(task: object) -> None:
                    if generation == 0:
                        candidates.extend(await hooks.seed(task, args.population))  # type: ignore[arg-type]
                    candidates.extend(await hooks.mutate(  # type: ignore[arg-type]
                        task, PARENT, stagnant_generations=stagnant, generation=generation, samples=args.mutations))

                for task in tasks:
                    tg.start_soon(ask, task)
            spent = sum(c.cost_nd for c in candidates)
            status = await orch.budget()
            scopes = {limit.scope: limit for limit in status.limits}
            booked = scopes.get(generation_scope(args.run, generation))
            allotment = plan.allotment(generation) if plan else 0
            carry = plan.carried_in(generation, spent_before) if plan else 0
            escalation = generation == args.escalate_at
            rows.append({
                "generation": generation, "allotment_nd": allotment, "carry_in_nd": carry, "spent_nd": spent,
                "ledger_nd": None if booked is None else booked.settled_nd, "answered": sum(c.ok for c in candidates),
                "refused": sum(not c.ok for c in candidates), "escalation": escalation,
                "within": None if escalation or plan is None else spent <= allotment + carry,
            })
            if not escalation:
                spent_before += spent
        final = await orch.budget()
    return {"rows": rows, "settled_nd": final.settled_nd, "limit_nd": final.limit_nd,
            "reserve_nd": plan.reserve_nd if plan else 0, "paced": plan is not None}


def report(outcome: dict[str, object]) -> str:
    rows = outcome["rows"]
    assert isinstance(rows, list)
    table = render_table(
        ("gen", "allotment", "carry in", "available", "spent", "ledger", "answered", "refused", "within"),
        [(
            f"{r['generation']}{' (escalation)' if r['escalation'] else ''}",
            format_usd(r["allotment_nd"], 6), format_usd(r["carry_in_nd"], 6),
            format_usd(r["allotment_nd"] + r["carry_in_nd"], 6), format_usd(r["spent_nd"], 6),
            "-" if r["ledger_nd"] is None else format_usd(r["ledger_nd"], 6),
            str(r["answered"]), str(r["refused"]), {None: "-", True: "yes", False: "NO"}[r["within"]],
        ) for r in rows],
    )
    return (f"{table}\nsettled {format_usd(outcome['settled_nd'], 6)} of {format_usd(outcome['limit_nd'], 6)}"  # type: ignore[arg-type]
            f"{'; reserve ' + format_usd(outcome['reserve_nd'], 6) if outcome['paced'] else ' (no pacing)'}")  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--schedule", default="front_loaded", choices=("even", "front_loaded"))
    parser.add_argument("--no-carry-over", action="store_true")
    parser.add_argument("--no-pacing", action="store_true", help="the same demand with no pacing, for comparison")
    parser.add_argument("--budget", type=float, default=0.02, help="the budget limit, dollars")
    parser.add_argument("--reserve", type=float, default=0.1, help="the share kept for stagnation escalations")
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--seed-ratio", type=float, default=0.2)
    parser.add_argument("--mutations", type=int, default=12, help="mutation requests per task per generation")
    parser.add_argument("--escalate-at", type=int, default=18, help="the generation whose population stagnates")
    parser.add_argument("--run", default="campaign")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outcome = anyio.run(campaign, args, Path(tmp))
    print(report(outcome))
    rows = outcome["rows"]
    assert isinstance(rows, list)
    escalation = [r for r in rows if r["escalation"]]
    ok = all(r["within"] is not False for r in rows) and all(r["spent_nd"] > 0 for r in escalation)
    if not ok:
        print("a generation spent past its allotment plus carry-over, or the escalation found no money", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

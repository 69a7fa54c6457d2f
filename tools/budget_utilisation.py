"""How much of a budget is spent before the last refusal, and whether the books converge.

    python tools/budget_utilisation.py journal --concurrency 300 --requests 1200
    python tools/budget_utilisation.py journal --concurrency 300 --requests 1200 --faults 0.3
    python tools/budget_utilisation.py journal --concurrency 300 --requests 1200 --faults 0.2 --drops 0.1
    python tools/budget_utilisation.py journal --concurrency 300 --requests 1200 --wait-s 0   # refuse at once
    python tools/budget_utilisation.py postgres --processes 3 --concurrency 100 --requests 400
    python tools/budget_utilisation.py postgres --processes 2 --concurrency 50 --requests 1200 --outage 6

Each process is a separate Python process embedding the orchestrator (`Orchestrator.start`
on the simulated providers, its own simulator and state directory) that sends distinct
text requests (`max_tokens` 256, `downgrade_on_budget: false`) at the given concurrency
and reports every outcome. `postgres` starts a throwaway PostgreSQL cluster (fsync on)
that all processes share as their ledger; `--outage S` stops it with `pg_ctl stop -m
immediate` once a third of the requests are answered, and starts it again S seconds
later.

Prints, per process and in total: answered, refused for budget (money gone, or a wait
that ran out), other failures; then the ledger: settled against the limit (the
utilisation), held, outstanding reservations, and whether Σ results = settled to the
nanodollar. Overspend is settled + held - limit when positive.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.pg_cluster import PgCluster  # noqa: E402

CONFIG = """extends: {base}
llm_routing:
  optimization:
    budget_limit: {limit}
  routing:
    downgrade_on_budget: false
  budget:
    wait_s: {wait_s}
{backend}
{simulator}
"""


def write_config(path: Path, limit: float, dsn: str | None, faults: float, drops: float, wait_s: float) -> None:
    backend = "    backend: postgres\n    dsn: ${ORCHESTRATOR_PG_DSN}\n    lease_s: 30" if dsn else "    journal: true"
    simulator = ""
    if faults or drops:
        simulator = (f"  simulator:\n    seed: 5\n    faults:\n      - kind: server_error\n        rate: {faults:.3f}\n"
                     f"      - kind: drop\n        rate: {drops:.3f}")
    path.write_text(CONFIG.format(base=ROOT / "configs" / "simulated.yaml", limit=limit, backend=backend,
                                  simulator=simulator, wait_s=wait_s))


def child(args: argparse.Namespace) -> int:
    """One process: run the workload, print one JSON line of outcomes."""
    import anyio

    from actors.errors import BudgetExceeded, LedgerUnavailable, OrchestratorError
    from actors.messages import Request, Result
    from orchestrator import Orchestrator

    requests = [Request.prompt(f"Process {args.name}: write a function, variant {i}, that parses a log line "
                               f"and returns its timestamp", max_tokens=256) for i in range(args.requests)]
    report: dict[str, object] = {}

    unavailable = 0

    async def main() -> None:
        async with Orchestrator.start(args.config, state_dir=args.state_dir) as orch:
            outcomes: list[object] = [None] * len(requests)
            limiter = anyio.CapacityLimiter(args.concurrency)

            async def one(index: int) -> None:
                """As a GA would: a request refused because the ledger is away is asked again."""
                nonlocal unavailable
                async with limiter:
                    for _ in range(240):
                        try:
                            outcomes[index] = await orch.generate(requests[index])
                            return
                        except LedgerUnavailable:
                            unavailable += 1
                            await anyio.sleep(0.25)
                        except OrchestratorError as exc:
                            outcomes[index] = exc
                            return

            async with anyio.create_task_group() as tasks:
                for index in range(len(requests)):
                    tasks.start_soon(one, index)
            budget = await orch.budget()
        results = [o for o in outcomes if isinstance(o, Result)]
        refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
        report.update(
            answered=len(results), cost_nd=sum(r.cost_nd for r in results),
            held_nd=sum(a.held_nd for r in results for a in r.attempts),
            refused_gone=sum(not _for_reserved_money(o) for o in refused),
            refused_waited=sum(_for_reserved_money(o) for o in refused),
            other=sorted({type(o).__name__ for o in outcomes if not isinstance(o, (Result, BudgetExceeded))}),
            failed_other=sum(not isinstance(o, (Result, BudgetExceeded)) for o in outcomes),
            waited=budget.waited, wait_s_total=round(budget.wait_s_total, 2), unavailable=unavailable,
        )

    anyio.run(main)
    print(json.dumps(report), flush=True)
    return 0


def _for_reserved_money(error: Exception) -> bool:
    """Refused while the money was only reserved (a wait that ran out, or no wait allowed), not gone."""
    return any(mark in str(error) for mark in ("waited", "requests in flight", "wait ahead"))


def ledger_status(config: Path, env: dict[str, str], state: Path) -> dict[str, int]:
    import anyio

    from orchestrator import Orchestrator

    os.environ.update(env)

    async def read() -> dict[str, int]:
        async with Orchestrator.start(str(config), state_dir=str(state)) as orch:
            status = await orch.budget()
        return {"limit_nd": status.limit_nd, "settled_nd": status.settled_nd, "reserved_nd": status.reserved_nd,
                "unreconciled_nd": status.unreconciled_nd, "outstanding": status.outstanding}

    return anyio.run(read)


def parent(args: argparse.Namespace) -> int:
    cluster = None
    env = dict(os.environ)
    if args.backend == "postgres":
        why = PgCluster.available()
        if why:
            print(f"cannot start PostgreSQL here: {why}", file=sys.stderr)
            return 2
        cluster = PgCluster(fsync=True)
        cluster.init()
        cluster.start()
        env["ORCHESTRATOR_PG_DSN"] = cluster.dsn
    processes = args.processes if args.backend == "postgres" else 1
    try:
        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "budget.yaml"
            write_config(config, args.limit, cluster.dsn if cluster else None, args.faults, args.drops, args.wait_s)
            started = time.perf_counter()
            runs = [
                subprocess.Popen(
                    [sys.executable, __file__, "child", "--config", str(config), "--state-dir",
                     str(Path(work) / f"process-{n}"), "--requests", str(args.requests), "--concurrency",
                     str(args.concurrency), "--name", str(n)],
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
                for n in range(processes)
            ]
            if args.outage and cluster is not None:
                threading.Thread(target=_outage, args=(cluster, args.outage, args.outage_after), daemon=True).start()
            reports = []
            for n, run in enumerate(runs):
                out, err = run.communicate(timeout=900)
                if run.returncode != 0:
                    print(f"process {n} failed:\n{err[-3000:]}", file=sys.stderr)
                    return 1
                reports.append(json.loads(out.strip().splitlines()[-1]))
            elapsed = time.perf_counter() - started
            state = Path(work) / ("process-0" if args.backend == "journal" else "reader")
            status = ledger_status(config, env, state)
    finally:
        if cluster is not None:
            cluster.destroy()
    for n, report in enumerate(reports):
        print(f"process {n}: answered {report['answered']}, refused {report['refused_gone']} (money gone) + "
              f"{report['refused_waited']} (money only reserved), other failures {report['failed_other']} "
              f"{report['other'] or ''}, ledger unavailable {report['unavailable']} times (asked again), waited {report['waited']} times, {report['wait_s_total']} s in all")
    cost = sum(int(r["cost_nd"]) for r in reports)
    limit = status["limit_nd"]
    held = status["unreconciled_nd"]
    print(f"{args.backend}: {processes} process(es) x concurrency {args.concurrency} x {args.requests} requests, "
          f"faults {args.faults:.0%}, drops {args.drops:.0%}, outage {args.outage or 0} s, budget.wait_s {args.wait_s:g}, {elapsed:.1f} s")
    print(f"settled {status['settled_nd']:,} nd of {limit:,} = {100 * status['settled_nd'] / limit:.1f}% "
          f"(settled + held {100 * (status['settled_nd'] + held) / limit:.1f}%)")
    print(f"held {held:,} nd, outstanding reservations {status['outstanding']}, "
          f"overspend "
          f"{max(0, status['settled_nd'] + held - limit):,} nd")
    print(f"sum of results' costs {cost:,} nd; settled {status['settled_nd']:,} nd: "
          f"{'equal' if cost == status['settled_nd'] else 'DIFFERENT by ' + format(status['settled_nd'] - cost, ',')}")
    print(f"every process served: {all(int(r['answered']) > 0 for r in reports)}")
    return 0


def _outage(cluster: PgCluster, seconds: float, after: float) -> None:
    time.sleep(after)
    cluster.stop("immediate")
    print(f"database stopped (immediate) for {seconds} s", flush=True)
    time.sleep(seconds)
    cluster.start()
    print("database started again", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="backend", required=True)
    for name in ("journal", "postgres"):
        one = sub.add_parser(name)
        one.add_argument("--processes", type=int, default=3)
        one.add_argument("--concurrency", type=int, default=100)
        one.add_argument("--requests", type=int, default=400)
        one.add_argument("--limit", type=float, default=0.004, help="the budget in dollars")
        one.add_argument("--faults", type=float, default=0.0, help="share of provider calls answered 500")
        one.add_argument("--drops", type=float, default=0.0,
                         help="share of calls whose connection drops after sending (held: outcome unknown)")
        one.add_argument("--outage", type=float, default=0.0, help="seconds the database is down mid-run")
        one.add_argument("--wait-s", type=float, default=60.0,
                         help="budget.wait_s; 0 refuses at once, as before the budget queue")
        one.add_argument("--outage-after", type=float, default=3.0, help="seconds into the run the outage starts")
    run = sub.add_parser("child")
    run.add_argument("--config", required=True)
    run.add_argument("--state-dir", required=True)
    run.add_argument("--requests", type=int, required=True)
    run.add_argument("--concurrency", type=int, required=True)
    run.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    return child(args) if args.backend == "child" else parent(args)


if __name__ == "__main__":
    raise SystemExit(main())

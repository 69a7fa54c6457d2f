"""Two orchestrator processes, one budget: the shared PostgreSQL ledger, shown end to end.

    python tools/shared_budget.py                 # starts a throwaway PostgreSQL cluster
    ORCHESTRATOR_PG_DSN=... python tools/shared_budget.py   # or uses yours

Writes a configuration that extends the simulated one with `budget.backend: postgres`
and a $1 limit, then starts two `orchestrator run` processes at once, each with 80
requests pinned to GPT-5 (about $0.04 of worst case each, so together they ask for
several times the budget). Each process keeps its own state directory; only the
ledger is shared. Prints each run's outcome, then `orchestrator budget` for the shared
ledger: settled + outstanding never passes $1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.pg_cluster import PgCluster  # noqa: E402

CONFIG = """extends: {base}
llm_routing:
  optimization:
    budget_limit: 1.0
  budget:
    backend: postgres
    dsn: ${{ORCHESTRATOR_PG_DSN}}
    lease_s: 30
"""


def main() -> int:
    cluster = None
    dsn = os.environ.get("ORCHESTRATOR_PG_DSN")
    if not dsn:
        why = PgCluster.available()
        if why:
            print(f"cannot start PostgreSQL here: {why}; set ORCHESTRATOR_PG_DSN", file=sys.stderr)
            return 2
        cluster = PgCluster()
        cluster.init()
        cluster.start()
        dsn = cluster.dsn
    try:
        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "shared.yaml"
            config.write_text(CONFIG.format(base=ROOT / "configs" / "simulated.yaml"))
            workload = Path(work) / "gpt5.jsonl"
            workload.write_text("".join(
                f'{{"prompt": "Design a fault-tolerant scheduler, variant {i}", "tier": "tier_4", "max_tokens": 4000}}\n'
                for i in range(80)
            ))
            env = {**os.environ, "ORCHESTRATOR_PG_DSN": dsn}
            runs = [
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator.cli.main", "run", "--config", str(config), "--requests",
                     str(workload), "--state-dir", str(Path(work) / f"process-{n}"), "--json"],
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                )
                for n in (1, 2)
            ]
            import json

            for n, run in enumerate(runs, 1):
                out, _ = run.communicate(timeout=300)
                summary = json.loads(out)
                print(f"process {n}: {summary['succeeded']} answered, {summary['budget_exceeded']} refused for budget, "
                      f"cost {summary['cost_usd']}")
            shown = subprocess.run(
                [sys.executable, "-m", "orchestrator.cli.main", "budget", "--config", str(config)],
                cwd=ROOT, env=env, capture_output=True, text=True, check=False,
            )
            print(shown.stdout or shown.stderr)
    finally:
        if cluster is not None:
            cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())

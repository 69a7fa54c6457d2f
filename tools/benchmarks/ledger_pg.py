"""Shared-ledger throughput: reserve+settle pairs per second with 1, 2 and 4 processes.

    python tools/bench.py ledger_pg            # starts a throwaway PostgreSQL cluster

Each process runs its own ledger actor (batching its operations into one transaction
per round trip) with 200 concurrent clients; the figure is all processes' pairs over
the wall time of the slowest. The journal backend (one process, its own file) is
measured in the same run for comparison; it cannot be shared between processes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from actors.ledger.settings import LedgerSettings
from orchestrator.tables import render_table
from tools.benchmarks.ledger import _pairs
from tools.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent.parent
PAIRS_PER_PROCESS = 4000


def _processes(dsn: str, count: int) -> float:
    started = time.perf_counter()
    children = [
        subprocess.Popen([sys.executable, str(ROOT / "tests" / "ledger_pg_child.py"), dsn, str(10**15),
                          str(PAIRS_PER_PROCESS), "1000"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(count)
    ]
    for child in children:
        child.communicate(timeout=600)
    return count * PAIRS_PER_PROCESS / (time.perf_counter() - started)


def main() -> None:
    why = PgCluster.available()
    if why:
        print(f"ledger_pg: skipped ({why})\n")
        return
    cluster = PgCluster(fsync=True)
    cluster.init()
    cluster.start()
    rows = []
    try:
        for count in (1, 2, 4):
            rows.append((f"postgres, {count} process{'es' if count > 1 else ''}", f"{_processes(cluster.dsn, count):.0f}"))
    finally:
        cluster.destroy()
    with tempfile.TemporaryDirectory() as state:
        settings = LedgerSettings(limit_nd=10**15, journal_path=f"{state}/journal", state_dir=state)
        rows.append(("journal, 1 process (fsync per batch)", f"{anyio.run(_pairs, settings, PAIRS_PER_PROCESS, 200):.0f}"))
    print(render_table(("ledger backend", "reserve+settle pairs/s"), rows,
                       title=f"shared ledger: {PAIRS_PER_PROCESS} pairs per process, 200 concurrent clients each; "
                             "PostgreSQL with fsync on"))
    print()

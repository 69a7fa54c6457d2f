"""What one group commit of the ledger's journal costs: fsync against fdatasync, on this machine's disk.

    python tools/bench.py journal-sync [--requests N] [--rounds R]

Each commit appends one record-sized write (200 bytes) to a file opened as the journal
is (O_APPEND, owner-only) and flushes it; the two calls alternate round by round in a
scratch directory beside the default state directory (the disk the journal lives on),
and the table gives wall and CPU µs per commit, median of the rounds with their range.
A sequential request waits for one such commit (its reservation's); at concurrency 16
with 50 ms answers most requests pay for one of their own (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.config import default_state_dir
from orchestrator.tables import render_table

RECORD = b"r" * 200


def _commits(directory: Path, flush: Callable[[int], None], count: int) -> tuple[float, float]:
    """(wall, CPU) µs per append-and-flush of one record, over `count` of them in a fresh file."""
    path = directory / "journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            os.write(fd, RECORD)
            flush(fd)
        return (time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6
    finally:
        os.close(fd)
        path.unlink()


def run(count: int = 2000, rounds: int = 5) -> dict[str, list[tuple[float, float]]]:
    flushes: dict[str, Callable[[int], None]] = {"fsync": os.fsync}
    if hasattr(os, "fdatasync"):
        flushes["fdatasync"] = os.fdatasync
    parent = default_state_dir(os.environ)
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in flushes}
    with tempfile.TemporaryDirectory(dir=parent, prefix="journal-sync-") as scratch:
        for _ in range(rounds):
            for name, flush in flushes.items():
                results[name].append(_commits(Path(scratch), flush, count))
    return results


def main(count: int = 2000, rounds: int = 5) -> None:
    rows = []
    for name, figures in run(count, rounds).items():
        walls, cpus = [w for w, _ in figures], [c for _, c in figures]
        rows.append((name, f"{statistics.median(walls):.0f} [{min(walls):.0f}-{max(walls):.0f}]",
                     f"{statistics.median(cpus):.0f} [{min(cpus):.0f}-{max(cpus):.0f}]"))
    print(render_table(("flush", "wall µs/commit", "CPU µs/commit"), rows,
                       title=f"journal group commit: one 200-byte record, {count} commits x {rounds} alternating rounds"))
    print()


if __name__ == "__main__":
    main()

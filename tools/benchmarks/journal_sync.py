"""What one group commit of the ledger's journal costs, on this machine's disk.

    python tools/bench.py journal-sync [--requests N] [--rounds R]

Each commit writes one record-sized commit (200 bytes) and flushes it, three ways
alternating round by round in a scratch directory beside the default state directory
(the disk the journal lives on): appended to a file opened O_APPEND and flushed with
fsync, then with fdatasync (the journal's file before format 2), and through the
journal's own `FileStorage` (format 2: the file preallocated a chunk at a time, the
commit written into space it already has, fdatasync). The table gives wall and CPU µs
and voluntary context switches per commit, median of the rounds with their range. A
sequential request waits for one such commit (its reservation's); at concurrency 16
with 50 ms answers most requests pay for one of their own (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from actors.ledger.journal import HEADER, FileStorage, commit_frame
from orchestrator.config import default_state_dir
from orchestrator.tables import render_table

RECORD = b"r" * 192
COMMIT = commit_frame(RECORD)


def _appended(flush: Callable[[int], None]) -> Callable[[Path], tuple[Callable[[], None], Callable[[], None]]]:
    """A commit appended to a file opened O_APPEND, then `flush`ed."""
    def open_file(path: Path) -> tuple[Callable[[], None], Callable[[], None]]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)

        def commit() -> None:
            os.write(fd, COMMIT)
            flush(fd)

        return commit, lambda: os.close(fd)

    return open_file


def _preallocated(path: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    """A commit through the journal's own storage, as the ledger writes one."""
    storage = FileStorage(path, path.parent)
    storage.append(HEADER)
    storage.sync()

    def commit() -> None:
        storage.append(COMMIT)
        storage.sync()

    return commit, storage.close


def _commits(directory: Path, opener: Callable[[Path], tuple[Callable[[], None], Callable[[], None]]],
             count: int) -> tuple[float, float, float]:
    """(wall µs, CPU µs, voluntary context switches) per commit, over `count` of them in a fresh file."""
    path = directory / "journal"
    commit, close = opener(path)
    try:
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            commit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
        return wall / count * 1e6, cpu / count * 1e6, switches / count
    finally:
        close()
        for leftover in directory.iterdir():
            leftover.unlink()


def run(count: int = 2000, rounds: int = 5) -> dict[str, list[tuple[float, float, float]]]:
    ways: dict[str, Callable[[Path], tuple[Callable[[], None], Callable[[], None]]]] = {
        "appended, fsync": _appended(os.fsync)}
    if hasattr(os, "fdatasync"):
        ways["appended, fdatasync (format 1's file)"] = _appended(os.fdatasync)
    ways["FileStorage: preallocated, fdatasync" if FileStorage.preallocates else "FileStorage"] = _preallocated
    parent = default_state_dir(os.environ)
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(dir=parent, prefix="journal-sync-") as scratch:
        for _ in range(rounds):
            for name, opener in ways.items():
                results[name].append(_commits(Path(scratch), opener, count))
    return results


def main(count: int = 2000, rounds: int = 5) -> None:
    rows = []
    for name, figures in run(count, rounds).items():
        walls, cpus, switches = ([f[i] for f in figures] for i in range(3))
        rows.append((name, f"{statistics.median(walls):.0f} [{min(walls):.0f}-{max(walls):.0f}]",
                     f"{statistics.median(cpus):.0f} [{min(cpus):.0f}-{max(cpus):.0f}]",
                     f"{statistics.median(switches):.2f}"))
    print(render_table(("commit", "wall µs/commit", "CPU µs/commit", "sleeps/commit"), rows,
                       title=f"journal group commit: one 200-byte commit, {count} commits x {rounds} alternating rounds"))
    print()


if __name__ == "__main__":
    main()

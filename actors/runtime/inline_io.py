"""Short blocking writes on the event loop while the disk proves fast, in a worker thread otherwise.

A worker thread keeps a slow disk off the event loop, but every hand-off costs CPU
and, worse, the completion waits its turn at the back of a busy loop's ready queue:
with 100 requests in flight against 50 ms answers, a reservation waited 16 ms for
its journal write, of which the fsync took 0.14 (docs/BENCHMARKS.md).

So after `window` writes in the thread, one write is tried on the loop (a probe);
while writes on the loop take less than `limit_s`, they stay there. One that takes
longer sends the next ones back to the thread and doubles the writes before the next
probe (up to 2^10 windows): a disk that stalls now and then blocks the loop at
geometrically rarer probes, and a fast disk is written inline for good. Only writes on
the loop are timed: timed in a thread, a write also counts its wait for the
interpreter lock, up to 5 ms on a busy loop, which says nothing about the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

_T = TypeVar("_T")
MAX_PENALTY = 10


class InlineIO:
    __slots__ = ("limit_s", "window", "_clock", "_inline", "_threaded", "_penalty")

    def __init__(self, limit_s: float, window: int = 32, clock: Callable[[], float] = time.perf_counter) -> None:
        self.limit_s = limit_s
        self.window = window
        self._clock = clock
        self._inline = False
        """Whether the last write on the loop was fast: the next one goes there too."""
        self._threaded = 0
        """Writes in the thread since the last on the loop."""
        self._penalty = 0
        """Writes on the loop that were slow (each doubles the writes in the thread before the next probe)."""

    def allowed(self) -> bool:
        return self.limit_s > 0 and (self._inline or self._threaded >= self.window << self._penalty)

    async def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on the loop if allowed (timed, to decide the next ones), else in a worker thread."""
        if not self.allowed():
            self._threaded += 1
            return await anyio.to_thread.run_sync(work)
        started = self._clock()
        try:
            return work()
        finally:
            self._inline = self._clock() - started < self.limit_s
            self._threaded = 0
            if not self._inline:
                self._penalty = min(MAX_PENALTY, self._penalty + 1)

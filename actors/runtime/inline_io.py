"""Short blocking writes on the event loop while the disk proves fast, in a worker thread otherwise.

A worker thread keeps a slow disk off the event loop, but every hand-off costs CPU
and, worse, the completion waits its turn at the back of a busy loop's ready queue:
with 100 requests in flight against 50 ms answers, a reservation waited 16 ms for
its journal write, of which the fsync took 0.14 (docs/BENCHMARKS.md). So a write runs
inline while each of the last `window` writes took less than `limit_s`. A slow write
sends the next ones back to the thread; a slow write that ran inline also doubles the
fast streak needed before the next inline one (up to 2^10 windows), so a disk that
stalls now and then blocks the loop a bounded number of times, then stays in the thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

_T = TypeVar("_T")
MAX_PENALTY = 10


class InlineIO:
    __slots__ = ("limit_s", "window", "_clock", "_fast", "_penalty")

    def __init__(self, limit_s: float, window: int = 32, clock: Callable[[], float] = time.perf_counter) -> None:
        self.limit_s = limit_s
        self.window = window
        self._clock = clock
        self._fast = 0
        """Writes in a row that took less than `limit_s`."""
        self._penalty = 0
        """Slow writes that ran inline (each doubles the streak the next inline write needs)."""

    def allowed(self) -> bool:
        return self.limit_s > 0 and self._fast >= self.window << self._penalty

    async def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on the loop if allowed, else in a worker thread; its duration decides the next ones."""
        if self.allowed():
            return self._timed(work, True)
        return await anyio.to_thread.run_sync(self._timed, work, False)

    def _timed(self, work: Callable[[], _T], inline: bool) -> _T:
        started = self._clock()
        try:
            return work()
        finally:
            self._record(self._clock() - started, inline)

    def _record(self, seconds: float, inline: bool) -> None:
        if seconds < self.limit_s:
            self._fast += 1
            return
        self._fast = 0
        if inline:
            self._penalty = min(MAX_PENALTY, self._penalty + 1)

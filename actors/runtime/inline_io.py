"""Short blocking writes on the event loop while the disk proves fast, in a worker thread otherwise.

A worker thread keeps a slow disk off the event loop, but every hand-off costs CPU
and, worse, the completion waits its turn at the back of a busy loop's ready queue:
with 100 requests in flight against 50 ms answers, a reservation waited 16 ms for
its journal write, of which the fsync took 0.14 (docs/BENCHMARKS.md).

So writes are tried on the loop from the start; while they take less than `limit_s`
they stay there. A single slow one is a spike, not a slow disk: a fast disk stalls
now and then (2-3 fsyncs in 500 at 100 requests in flight here), and sending the next
64 writes to the thread for it cost those reservations 3-28 ms each
(docs/BENCHMARKS.md). `LEAVE_AFTER` slow writes among the last `RECENT` on the loop
send the next ones to the thread, and the write after `window` x 2^k of them is tried
on the loop again (a probe: slow, and the thread keeps the writes), k counting the
times the loop was left and dropping by one after as many fast writes in a row: a
consistently slow disk is probed geometrically rarer and stays in the thread, a fast
disk that had a bad spell comes back and is forgiven. Only writes on the loop are
timed: timed in a thread, a write also counts its wait for the interpreter lock, up
to 5 ms on a busy loop, which says nothing about the disk.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

_T = TypeVar("_T")
MAX_PENALTY = 10
LEAVE_AFTER = 2
RECENT = 16


class InlineIO:
    __slots__ = ("limit_s", "window", "_clock", "_inline", "_threaded", "_fast", "_penalty", "_recent", "on_loop",
                 "in_thread", "slow", "loop_s")

    def __init__(self, limit_s: float, window: int = 32, clock: Callable[[], float] = time.perf_counter) -> None:
        self.limit_s = limit_s
        self.window = window
        self._clock = clock
        self._inline = True
        """Whether the next write goes on the loop: the last one there was fast (or none was tried yet)."""
        self._threaded = 0
        """Writes in the thread since the last on the loop."""
        self._fast = 0
        """Fast writes on the loop in a row."""
        self._penalty = 0
        """k: the thread takes window x 2^k writes before the next probe."""
        self._recent: deque[bool] = deque(maxlen=RECENT)
        """Whether each of the last writes on the loop since it was last left was slow."""
        self.on_loop = 0
        self.in_thread = 0
        self.slow = 0
        """Writes on the loop that took `limit_s` or longer."""
        self.loop_s = 0.0
        """Seconds the loop spent writing: what the writes kept every other task waiting (the `/metrics` page)."""

    def allowed(self) -> bool:
        return self.limit_s > 0 and (self._inline or self._threaded >= self.window << self._penalty)

    async def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on the loop if allowed (timed, to decide the next ones), else in a worker thread."""
        if not self.allowed():
            self._threaded += 1
            self.in_thread += 1
            return await anyio.to_thread.run_sync(work)
        started = self._clock()
        try:
            return work()
        finally:
            self._record(self._clock() - started)

    def _record(self, seconds: float) -> None:
        self._threaded = 0
        slow = seconds >= self.limit_s
        self.on_loop += 1
        self.slow += slow
        self.loop_s += seconds
        probe = not self._inline
        self._recent.append(slow)
        if slow and (probe or self._recent.count(True) >= LEAVE_AFTER):
            self._inline = False
            self._fast = 0
            self._penalty = min(MAX_PENALTY, self._penalty + 1)
            self._recent.clear()
            return
        self._inline = True
        if slow:
            self._fast = 0
            return
        self._fast += 1
        if self._penalty and self._fast >= self.window << self._penalty:
            self._penalty -= 1
            self._fast = 0

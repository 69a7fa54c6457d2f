"""Ask timeouts for a whole actor system, kept by one task instead of a cancel scope per ask.

A request makes three timed asks (ledger reserve, cache lookup, provider call). With
`anyio.fail_after` each was a cancel scope, an asyncio timer armed and cancelled, and
an event (keeping them here: 478 to 407 µs of CPU per request, 3aa9b19 against
e977dfc in the revisions table of docs/BENCHMARKS.md). Almost every ask is
answered long before its deadline, so the deadlines only need to be looked at when
the earliest unanswered one falls due: they go on a heap, and one task sleeps until
that one; entries of asks answered meanwhile are dropped from the top when it
wakes. Deadlines mostly arrive in increasing order (now + the same timeout), so
arming one rarely wakes the task. The heap is rebuilt from the live entries when answered ones
outnumber them, so memory follows the asks in flight, not the rate times the timeout.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import anyio

from actors.runtime.clock import current_time

COMPACT_AT = 64
"""Below this many entries the heap is never rebuilt (stale entries cost nothing there)."""


class Deadlines:
    """A heap of (deadline, correlation id), and the loop that expires what falls due."""

    __slots__ = ("_heap", "_next_wake", "_rearm", "running")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._next_wake = math.inf
        self._rearm: anyio.Event | None = None
        self.running = False

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, deadline: float, corr: int) -> None:
        heapq.heappush(self._heap, (deadline, corr))
        if deadline < self._next_wake and self._rearm is not None:
            self._rearm.set()

    async def run(self, expire: Callable[[int, float], None], waiting: Callable[[int], bool]) -> None:
        """Call `expire(corr, now)` for every deadline that falls due, until cancelled.

        `waiting(corr)` says whether an ask is still unanswered; the others' entries
        are only dead weight, dropped when they come up or when the heap is rebuilt.
        """
        self.running = True
        try:
            while True:
                now = current_time()
                heap = self._heap
                while heap:
                    deadline, corr = heap[0]
                    if deadline <= now:
                        expire(corr, now)
                    elif waiting(corr):
                        break
                    heapq.heappop(heap)
                if len(heap) > COMPACT_AT:
                    live = [entry for entry in heap if waiting(entry[1])]
                    if 2 * len(live) < len(heap):
                        heapq.heapify(live)
                        self._heap = heap = live
                self._rearm = anyio.Event()
                self._next_wake = heap[0][0] if heap else math.inf
                with anyio.move_on_after(self._next_wake - now):
                    await self._rearm.wait()
        finally:
            self.running = False
            self._rearm = None
            self._next_wake = math.inf

"""Work from an actor to its own worker tasks, first in, first out.

A provider actor queues each call for one of its `max_concurrency` workers. With an
anyio memory stream, a worker that finished a call and found the queue empty
checkpointed before it looked again (`receive()` always yields first), then waited:
two loop iterations per call where one does (docs/BENCHMARKS.md). Here a worker that
finds work takes it without yielding, and an idle one waits on a `Signal` that `put`
sets after handing it the item directly, so the item never waits in the queue while
a worker is free.

One producer, many consumers, unbounded: the actor bounds what it queues itself
(`queue_limit`). A worker cancelled just after being handed an item gives it back to
the front of the queue, so no item is lost to a cancellation. One cancelled after
`close` woke it (a stop does both at once) is already off the idle list: it just
ends cancelled.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

from actors.runtime.signal import Signal

_T = TypeVar("_T")


class _Idle(Generic[_T]):
    __slots__ = ("signal", "item", "handed")

    def __init__(self) -> None:
        self.signal = Signal()
        self.item: _T | None = None
        self.handed = False


class WorkQueue(Generic[_T]):
    __slots__ = ("_items", "_idle", "_closed")

    def __init__(self) -> None:
        self._items: deque[_T] = deque()
        self._idle: deque[_Idle[_T]] = deque()
        self._closed = False

    def __len__(self) -> int:
        """Items queued and not yet taken by a worker."""
        return len(self._items)

    def put(self, item: _T) -> None:
        """Hand `item` to the longest-idle worker, else queue it; raises `ClosedResourceError` once closed."""
        if self._closed:
            raise anyio.ClosedResourceError
        if self._idle:
            idle = self._idle.popleft()
            idle.item = item
            idle.handed = True
            idle.signal.set()
        else:
            self._items.append(item)

    def close(self) -> None:
        """Take no more items; workers drain what is queued, then `get` raises `EndOfStream`."""
        self._closed = True
        while self._idle:
            self._idle.popleft().signal.set()

    async def get(self) -> _T:
        """The next item: at once, without a checkpoint, when one is queued; else wait for one."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            raise anyio.EndOfStream
        idle: _Idle[_T] = _Idle()
        self._idle.append(idle)
        try:
            await idle.signal.wait()
        except BaseException:
            if idle.handed:
                self._items.appendleft(idle.item)  # type: ignore[arg-type]
            elif not self._closed:
                self._idle.remove(idle)
            raise
        if not idle.handed:
            raise anyio.EndOfStream
        return idle.item  # type: ignore[return-value]

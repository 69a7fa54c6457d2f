"""A one-shot wake-up for a single waiting task: the slot an ask's reply lands in.

Every ask used to make an `anyio.Event`, which looks the backend up (sniffio, a
thread-local) and builds an `asyncio.Event` with its own queue of waiters: 1.3 µs to
make, and as much again to wait on (docs/BENCHMARKS.md). An ask has exactly one
waiter, its asker, so under asyncio a bare future of the running loop does the same
job, made only if the asker has to wait at all. Under trio (and so under the tests'
MockClock) it is an `anyio.Event`, as before.

Cancelling the waiter cancels its future, as it would cancel the future inside an
`asyncio.Event`; a `set` after that is a no-op, and the next `wait` makes a fresh
future. Two tasks waiting at once is a bug of the caller's, refused with
`RuntimeError` rather than letting one waiter's cancellation wake the other.
"""

from __future__ import annotations

from asyncio import Future
from asyncio.events import _get_running_loop

import anyio
import anyio.lowlevel


class Signal:
    __slots__ = ("_set", "_future", "_event")

    def __init__(self) -> None:
        self._set = False
        self._future: Future[None] | None = None
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Wake the waiter, or let its next `wait` return at once."""
        if self._set:
            return
        self._set = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Until `set`; a checkpoint even when it already is, like `anyio.Event.wait`."""
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        if self._future is not None and not self._future.done() or self._event is not None:
            raise RuntimeError("a Signal has one waiter; a second task waited on it")
        loop = _get_running_loop()
        if loop is None:
            self._event = event = anyio.Event()
            try:
                await event.wait()
            finally:
                self._event = None
            return
        self._future = future = loop.create_future()
        try:
            await future
        finally:
            self._future = None

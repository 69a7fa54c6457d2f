"""The event loop's clock, read without looking the backend up on every call.

`anyio.current_time()` finds the running backend (sniffio, a thread-local, a dict)
each time it is called, and a request reads the clock about fourteen times (ask
deadlines, queue stamps, breakers, latencies). Under asyncio the answer is always
the running loop's `time()`, which `asyncio.events._get_running_loop` (a C call,
in that module's `__all__`) finds at once; under trio, where no asyncio loop runs,
it is trio's clock (a `MockClock` in tests), through anyio as before.
"""

from __future__ import annotations

from asyncio.events import _get_running_loop
from collections.abc import Callable

import anyio


def current_time() -> float:
    """The running event loop's monotonic clock, as `anyio.current_time()` reads it."""
    loop = _get_running_loop()
    if loop is not None:
        return loop.time()
    return anyio.current_time()


def loop_clock() -> Callable[[], float]:
    """The clock of the loop running now, for parts that live on it as long as it runs.

    Under asyncio, the loop's bound `time`: `current_time` finds the running loop on
    every call, and in Python 3.11 that costs a `getpid()` system call each time
    (docs/BENCHMARKS.md). Under trio, `anyio.current_time` (a MockClock in tests).
    """
    loop = _get_running_loop()
    return loop.time if loop is not None else anyio.current_time

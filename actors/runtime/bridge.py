"""How aiohttp (asyncio-only) serves an orchestrator embedded in a trio program.

Under asyncio the HTTP side runs on the caller's own loop: no hop at all. Under trio
it runs on a private asyncio loop in one daemon thread; each call crosses with
`asyncio.run_coroutine_threadsafe` and wakes the trio task through
`TrioToken.run_sync_soon`, so neither loop ever blocks on the other. The cost is two
thread hand-offs per HTTP call (tens of microseconds, measured in docs/BENCHMARKS.md)
and one extra thread; the win is one HTTP code path for both backends, with no
trio-asyncio dependency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sniffio

_T = TypeVar("_T")


class HttpLoop:
    """Runs coroutine functions on an asyncio loop suited to aiohttp."""

    async def run(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        raise NotImplementedError

    def close(self) -> None:
        """Release the loop (a no-op for the caller's own loop)."""


class SameLoop(HttpLoop):
    """The host is asyncio: call straight through."""

    async def run(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return await fn(*args)


class ThreadLoop(HttpLoop):
    """A private asyncio loop in a daemon thread, for trio hosts."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="orchestrator-http", daemon=True
        )
        self._thread.start()

    async def run(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        import trio

        future: concurrent.futures.Future[_T] = asyncio.run_coroutine_threadsafe(
            fn(*args), self._loop
        )
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(wake)
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        return future.result()

    def close(self) -> None:
        async def shutdown() -> None:
            await asyncio.sleep(0)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()


def http_loop_for_current_backend() -> HttpLoop:
    if sniffio.current_async_library() == "asyncio":
        return SameLoop()
    return ThreadLoop()

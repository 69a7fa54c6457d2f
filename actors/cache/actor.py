"""The cache actor: owns the store and runs it on one worker thread at a time.

SQLite connections are not safe for concurrent use, and its calls block, so every
store call goes through `anyio.to_thread.run_sync` under a limiter of one: the event
loop never waits on the disk and the store never sees two calls at once.
"""

from __future__ import annotations

import anyio

from actors.cache.messages import CacheLookup, CacheMiss, CachePut, CacheStatsQuery
from actors.cache.settings import CacheSettings
from actors.cache.store import CacheStore
from actors.errors import OrchestratorError
from actors.runtime.actor import Actor


class CacheActor(Actor):
    name = "cache"

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self._limiter = anyio.CapacityLimiter(1)
        self._store: CacheStore | None = None

    async def on_start(self) -> None:
        self._store = await anyio.to_thread.run_sync(CacheStore, self.settings, limiter=self._limiter)

    async def on_stop(self) -> None:
        if self._store is not None:
            await anyio.to_thread.run_sync(self._store.close, limiter=self._limiter)

    async def handle(self, msg: object, corr: int) -> object | None:
        store = self._store
        assert store is not None
        if isinstance(msg, CacheLookup):
            self.tasks.start_soon(self._lookup, store, msg, corr)
            return None
        if isinstance(msg, CachePut):
            await anyio.to_thread.run_sync(store.put, msg, limiter=self._limiter)
            return None
        if isinstance(msg, CacheStatsQuery):
            return store.stats()
        raise OrchestratorError(f"the cache does not handle {type(msg).__name__}")

    async def _lookup(self, store: CacheStore, msg: CacheLookup, corr: int) -> None:
        def lookup() -> object:
            hit = store.get(msg.key)
            if hit is None and msg.similar_text is not None:
                hit = store.similar(msg.kind, msg.tier, msg.similar_text)
            return hit or CacheMiss()

        self.inbox.reply(corr, await anyio.to_thread.run_sync(lookup, limiter=self._limiter))

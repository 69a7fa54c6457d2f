"""The cache actor: owns the store and works on it in batches, off the event loop.

SQLite calls block and a connection must not be used by two threads at once, so all
store work runs in one worker thread at a time. Lookups and stores that arrive while
a batch is running are queued and served together by the next one: one thread hop
and one write transaction for the whole batch, which is what keeps the cache cheap
under a GA's hundreds of concurrent requests. A batch writes before it reads, so a
lookup never misses an answer stored before it arrived. Lookups of keys certainly not
stored never get here: the client answers them from the file's key index (client.py).
"""

from __future__ import annotations

import anyio
import attrs

from actors.cache.messages import CacheLookup, CacheMiss, CachePut, CacheStatsQuery, CacheTouched
from actors.cache.settings import CacheSettings
from actors.cache.store import CacheStore
from actors.errors import OrchestratorError
from actors.runtime.actor import Actor
from actors.runtime.doorbell import Doorbell


class CacheActor(Actor):
    name = "cache"
    PUT_LINGER_S = 0.05
    PUT_BATCH = 256

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self._limiter = anyio.CapacityLimiter(1)
        self._store: CacheStore | None = None
        self._lookups: list[tuple[int, CacheLookup]] = []
        self._puts: list[CachePut] = []
        self._touches: list[CacheTouched] = []
        self._doorbell = Doorbell()

    async def on_start(self) -> None:
        self._store = await anyio.to_thread.run_sync(CacheStore, self.settings, limiter=self._limiter)
        self.tasks.start_soon(self._worker)

    async def on_stop(self) -> None:
        if self._store is not None:
            await self._run_batch()
            await anyio.to_thread.run_sync(self._store.close, limiter=self._limiter)

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, CacheLookup):
            self._lookups.append((corr, msg))
            self._doorbell.ring(urgent=True)
        elif isinstance(msg, CachePut):
            self._puts.append(msg)
            self._doorbell.ring(urgent=len(self._puts) >= self.PUT_BATCH)
        elif isinstance(msg, CacheTouched):
            self._touches.append(msg)
            self._doorbell.ring(urgent=len(self._touches) >= self.PUT_BATCH)
        elif isinstance(msg, CacheStatsQuery):
            assert self._store is not None
            stats = self._store.stats()
            return attrs.evolve(stats, hits=stats.hits + len(self._touches),
                                saved_nd=stats.saved_nd + sum(t.cost_nd for t in self._touches))
        else:
            raise OrchestratorError(f"the cache does not handle {type(msg).__name__}")
        return None

    async def _worker(self) -> None:
        while True:
            await self._doorbell.wait(self.PUT_LINGER_S)
            await self._run_batch()

    async def _run_batch(self) -> None:
        store = self._store
        lookups, self._lookups = self._lookups, []
        puts, self._puts = self._puts, []
        touches, self._touches = self._touches, []
        if store is None or not (lookups or puts or touches):
            return

        def work() -> list[object]:
            store.put_many(puts)
            store.touch_many(touches)
            answers: list[object] = []
            for _, msg in lookups:
                hit = store.get(msg.key)
                if hit is None and msg.similar_text is not None:
                    hit = store.similar(msg.kind, msg.tier, msg.similar_text)
                answers.append(hit or CacheMiss())
            return answers

        answers = await anyio.to_thread.run_sync(work, limiter=self._limiter)
        for (corr, _), answer in zip(lookups, answers):
            self.inbox.reply(corr, answer)

"""The cache actor: owns the store and works on it in batches, off the event loop.

SQLite calls block and a connection must not be used by two threads at once, so all
store work runs in one worker thread at a time. Lookups and stores that arrive while
a batch is running are queued and served together by the next one: one thread hop
and one write transaction for the whole batch, which is what keeps the cache cheap
under a GA's hundreds of concurrent requests. A batch writes before it reads, so a
lookup never misses an answer stored before it arrived.
"""

from __future__ import annotations

from collections import Counter

import anyio
import attrs

from actors.cache.messages import CacheLookup, CacheMiss, CachePut, CacheStatsQuery
from actors.cache.probe import KeyProbe
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
        self._unwritten: Counter[str] = Counter()
        self._probe: KeyProbe | None = None
        self._probed_misses = 0
        self._doorbell = Doorbell()

    async def on_start(self) -> None:
        self._store = await anyio.to_thread.run_sync(CacheStore, self.settings, limiter=self._limiter)
        if self.settings.path is not None and not self._store.degraded:
            self._probe = await anyio.to_thread.run_sync(KeyProbe.open, self.settings.path)
        self.tasks.start_soon(self._worker)

    async def on_stop(self) -> None:
        if self._probe is not None:
            self._probe.close()
        if self._store is not None:
            await self._run_batch()
            await anyio.to_thread.run_sync(self._store.close, limiter=self._limiter)

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, CacheLookup):
            if self._certainly_missing(msg):
                self._probed_misses += 1
                return CacheMiss()
            self._lookups.append((corr, msg))
            self._doorbell.ring(urgent=True)
        elif isinstance(msg, CachePut):
            self._puts.append(msg)
            self._unwritten[msg.key] += 1
            self._doorbell.ring(urgent=len(self._puts) >= self.PUT_BATCH)
        elif isinstance(msg, CacheStatsQuery):
            assert self._store is not None
            stats = self._store.stats()
            return attrs.evolve(stats, misses=stats.misses + self._probed_misses)
        else:
            raise OrchestratorError(f"the cache does not handle {type(msg).__name__}")
        return None

    def _certainly_missing(self, msg: CacheLookup) -> bool:
        """Not stored, not about to be, and no similar answer wanted: a miss without the worker."""
        return (
            self._probe is not None and msg.similar_text is None and msg.key not in self._unwritten
            and self._probe.absent(msg.key)
        )

    async def _worker(self) -> None:
        while True:
            await self._doorbell.wait(self.PUT_LINGER_S)
            await self._run_batch()

    async def _run_batch(self) -> None:
        store = self._store
        lookups, self._lookups = self._lookups, []
        puts, self._puts = self._puts, []
        if store is None or not (lookups or puts):
            return

        def work() -> list[object]:
            store.put_many(puts)
            answers: list[object] = []
            for _, msg in lookups:
                hit = store.get(msg.key)
                if hit is None and msg.similar_text is not None:
                    hit = store.similar(msg.kind, msg.tier, msg.similar_text)
                answers.append(hit or CacheMiss())
            return answers

        try:
            answers = await anyio.to_thread.run_sync(work, limiter=self._limiter)
        finally:
            for put in puts:
                left = self._unwritten[put.key] - 1
                if left:
                    self._unwritten[put.key] = left
                else:
                    del self._unwritten[put.key]
        for (corr, _), answer in zip(lookups, answers):
            self.inbox.reply(corr, answer)

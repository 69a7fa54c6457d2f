"""The cache as the router uses it. Lookups ask; stores are told (fire and forget).

An exact lookup needs no message at all when the cache file can say: the client
reads the entry through a read-only connection of its own (`KeyProbe`) and answers a
miss, or a live hit, itself. Most lookups of a GA run miss (every new sample is a new
key), and each used to cost an ask to the cache actor, a round trip through its inbox,
for an answer the index gives in microseconds; a hit cost that and a thread hop
(docs/BENCHMARKS.md). A hit answered here is told to the actor (`CacheTouched`), which
stays the only writer and counts it. The actor answers everything else: keys this
client stored recently (the actor may not have written them yet), lookups that accept
a similar answer, expired entries, and every lookup when the file cannot be probed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import anyio
import attrs

from actors.cache.messages import CacheHit, CacheLookup, CachePut, CacheStats, CacheStatsQuery, CacheTouched
from actors.cache.probe import UNSURE, KeyProbe, Looked
from actors.errors import OrchestratorError
from actors.runtime.actor import ActorRef

RECENT_STORES = 4096
"""Stores remembered as possibly unwritten: far more than the actor ever holds back (it
writes every 256 stores or 50 ms), so a key is only forgotten once it is on disk."""


class CacheClient:
    def __init__(self, ref: ActorRef, timeout: float = 5.0, *, path: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._ref = ref
        self._timeout = timeout
        self._path = path
        self._clock = clock
        """The store's clock, which entries' expiry times are on."""
        self._probe: KeyProbe | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.misses = 0
        """Misses this client answered itself (the actor counts the rest, and the hits this client answered: it is told)."""

    async def lookup(self, key: str, *, kind: str, tier: str, similar_text: str | None) -> CacheHit | None:
        """A hit, or None; a cache that cannot answer in time is a miss, never an error."""
        if similar_text is None and key not in self._recent:
            looked = self._look(key)
            if looked.absent:
                self.misses += 1
                return None
            if looked.hit is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self._ref.tell(CacheTouched(key, looked.hit.cost_nd))  # a cache stopping loses the count only
                return looked.hit
        try:
            answer = await self._ref.ask(CacheLookup(key, kind, tier, similar_text), self._timeout)
        except OrchestratorError:
            return None
        return answer if isinstance(answer, CacheHit) else None

    def _look(self, key: str) -> Looked:
        if self._probe is None:
            if self._path is None:
                return UNSURE
            self._probe = KeyProbe.open(self._path)
            if self._probe is None:
                self._path = None
                return UNSURE
        return self._probe.look(key, self._clock())

    async def store(
        self,
        key: str,
        *,
        kind: str,
        tier: str,
        model: str,
        provider: str,
        text: str,
        input_tokens: int,
        output_tokens: int,
        cost_nd: int,
        ttl_s: float | None,
        similar_text: str | None,
    ) -> None:
        self._recent[key] = None
        self._recent.move_to_end(key)
        if len(self._recent) > RECENT_STORES:
            self._recent.popitem(last=False)
        await self._ref.tell(
            CachePut(key, kind, tier, model, provider, text, input_tokens, output_tokens, cost_nd, ttl_s, similar_text)
        )

    async def stats(self) -> CacheStats:
        stats: CacheStats = await self._ref.ask(CacheStatsQuery(), math.inf)
        return attrs.evolve(stats, misses=stats.misses + self.misses)

    def close(self) -> None:
        """Close the probe's connection (the actor owns and closes the store)."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None

"""The cache as the router uses it. Lookups ask; stores are told (fire and forget)."""

from __future__ import annotations

import math

from actors.cache.messages import CacheHit, CacheLookup, CachePut, CacheStats, CacheStatsQuery
from actors.errors import OrchestratorError
from actors.runtime.actor import ActorRef


class CacheClient:
    def __init__(self, ref: ActorRef, timeout: float = 5.0) -> None:
        self._ref = ref
        self._timeout = timeout

    async def lookup(self, key: str, *, kind: str, tier: str, similar_text: str | None) -> CacheHit | None:
        """A hit, or None; a cache that cannot answer in time is a miss, never an error."""
        try:
            answer = await self._ref.ask(CacheLookup(key, kind, tier, similar_text), self._timeout)
        except OrchestratorError:
            return None
        return answer if isinstance(answer, CacheHit) else None

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
        await self._ref.tell(
            CachePut(key, kind, tier, model, provider, text, input_tokens, output_tokens, cost_nd, ttl_s, similar_text)
        )

    async def stats(self) -> CacheStats:
        return await self._ref.ask(CacheStatsQuery(), math.inf)

"""What the router says to the cache actor."""

from __future__ import annotations

from actors.codec import message


@message(200)
class CacheLookup:
    key: str
    kind: str
    tier: str
    similar_text: str | None = None


@message(201)
class CacheHit:
    """An answer from the cache; `similarity` is None for an exact hit."""

    text: str
    input_tokens: int
    output_tokens: int
    cost_nd: int
    model: str
    provider: str
    tier: str
    similarity: float | None = None


@message(202)
class CacheMiss:
    pass


@message(203)
class CachePut:
    key: str
    kind: str
    tier: str
    model: str
    provider: str
    text: str
    input_tokens: int
    output_tokens: int
    cost_nd: int
    ttl_s: float | None = None
    similar_text: str | None = None


@message(204)
class CacheStatsQuery:
    pass


@message(205)
class CacheStats:
    hits: int
    similar_hits: int
    misses: int
    entries: int
    bytes: int
    saved_nd: int
    evictions: int
    degraded: bool


@message(206)
class CacheTouched:
    """An exact hit the client answered from the file itself: the actor counts it and raises the entry's priority."""

    key: str
    cost_nd: int


MESSAGES: tuple[type, ...] = (CacheLookup, CacheHit, CacheMiss, CachePut, CacheStatsQuery, CacheStats, CacheTouched)

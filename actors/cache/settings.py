"""Settings of the response cache."""

from __future__ import annotations

import attrs


@attrs.frozen
class CacheSettings:
    path: str | None = None
    similarity_threshold: float = 0.85
    max_entries: int = 100_000
    max_bytes: int = 512 * 1024 * 1024
    default_ttl_s: float | None = None
    enabled: bool = True

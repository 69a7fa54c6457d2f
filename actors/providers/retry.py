"""Retry policy: exponential backoff with jitter, honouring Retry-After.

Defaults follow the coding-router source: initial 1 s, x2, capped at 60 s, at most
3 retries. Jitter spreads retries of many requests that failed together.
"""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class RetrySettings:
    initial_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0
    max_retries: int = 3
    jitter: float = 0.1
    max_retry_after_s: float = 120.0
    before_fallback: int = 0
    """Retries of a candidate while others remain; 0 falls back at once (the last candidate gets `max_retries`)."""

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        base = min(self.cap_s, self.initial_s * self.factor ** (retry - 1))
        if self.jitter:
            base *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        if retry_after_s is not None:
            base = max(base, min(retry_after_s, self.max_retry_after_s))
        return max(0.0, base)

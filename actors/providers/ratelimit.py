"""Requests-per-minute and tokens-per-minute buckets, as a synchronous core.

A provider actor asks `wait_for(tokens, now)` before each call and sleeps the answer,
so requests queue here instead of provoking a 429. The clock is passed in, so the
buckets are tested under a mock clock without any I/O.
"""

from __future__ import annotations


class _Bucket:
    __slots__ = ("capacity", "rate", "level", "stamp")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def shortfall(self, amount: float) -> float:
        """Seconds until `amount` is available; an amount above capacity waits for a full bucket."""
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need / self.rate


class RateLimiter:
    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None, now: float) -> None:
        self._requests = _Bucket(requests_per_minute, now) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, now) if tokens_per_minute else None

    def wait_for(self, tokens: int, now: float) -> float:
        """Take one request and `tokens` tokens if both are available (return 0), else the wait."""
        wait = 0.0
        for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
            if bucket is not None:
                bucket.refill(now)
                wait = max(wait, bucket.shortfall(amount))
        if wait > 0:
            return wait
        if self._requests is not None:
            self._requests.level -= 1.0
        if self._tokens is not None:
            self._tokens.level -= min(float(tokens), self._tokens.capacity)
        return 0.0

    def refund(self, tokens: int, now: float) -> None:
        """Give back what `wait_for` took for a call that never reached the provider (its caller gave up while it
        waited, or the connection failed): the request and its tokens, which the provider never counted."""
        for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
            if bucket is not None and amount > 0:
                bucket.refill(now)
                bucket.level = min(bucket.capacity, bucket.level + min(amount, bucket.capacity))

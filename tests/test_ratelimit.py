"""Requests- and tokens-per-minute buckets, with the clock passed in."""

from __future__ import annotations

import pytest

from actors.providers.ratelimit import RateLimiter


def test_requests_per_minute_spaces_requests_after_the_burst() -> None:
    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=None, now=0.0)
    assert all(limiter.wait_for(1, 0.0) == 0 for _ in range(60))
    assert limiter.wait_for(1, 0.0) == pytest.approx(1.0)
    assert limiter.wait_for(1, 1.0) == 0


def test_tokens_per_minute_waits_for_enough_tokens() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=6000, now=0.0)
    assert limiter.wait_for(6000, 0.0) == 0
    assert limiter.wait_for(500, 0.0) == pytest.approx(5.0)
    assert limiter.wait_for(500, 5.0) == 0


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_not_forever() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=1000, now=0.0)
    assert limiter.wait_for(900, 0.0) == 0
    wait = limiter.wait_for(5000, 0.0)
    assert wait == pytest.approx(54.0)
    assert limiter.wait_for(5000, wait) == 0


def test_refund_returns_unused_tokens() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=600, now=0.0)
    limiter.wait_for(600, 0.0)
    limiter.refund(300, 0.0)
    assert limiter.wait_for(300, 0.0) == 0


def test_no_limits_never_wait() -> None:
    limiter = RateLimiter(None, None, now=0.0)
    assert all(limiter.wait_for(10**9, 0.0) == 0 for _ in range(1000))

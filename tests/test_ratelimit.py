"""Requests- and tokens-per-minute buckets, with the clock passed in."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import AskTimeout
from actors.messages import ChatMessage
from actors.providers.actor import ProviderActor
from actors.providers.messages import ProviderCall
from actors.providers.ratelimit import RateLimiter
from actors.providers.settings import ProviderSettings
from actors.runtime.supervisor import Supervisor
from tests.fakes import ScriptedTransport, openai_ok


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


def test_a_refund_gives_back_the_request_and_its_tokens() -> None:
    limiter = RateLimiter(requests_per_minute=1, tokens_per_minute=600, now=0.0)
    limiter.wait_for(600, 0.0)
    limiter.refund(600, 0.0)
    assert limiter.wait_for(600, 0.0) == 0


def test_no_limits_never_wait() -> None:
    limiter = RateLimiter(None, None, now=0.0)
    assert all(limiter.wait_for(10**9, 0.0) == 0 for _ in range(1000))


def _call(n: int) -> ProviderCall:
    return ProviderCall(f"r{n}", 1, (ChatMessage("user", "hi"),), 10, None, None, (), 100)


@pytest.mark.trio
async def test_a_call_that_never_reached_the_provider_gives_its_request_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two requests a minute: two refused connections used them up, and the two calls after waited a minute
    (measured: 60 s) for a limit the provider never counted."""
    settings = ProviderSettings(name="p", protocol="openai", base_url="http://provider.invalid/v1", model="m",
                                input_price_nd_per_mtok=1, output_price_nd_per_mtok=1, max_concurrency=1,
                                requests_per_minute=2, tokens_per_minute=200)
    transport = ScriptedTransport([ConnectionRefusedError(), ConnectionRefusedError()], default=openai_ok())
    supervisor = Supervisor(CODEC)
    ref = supervisor.add("p", lambda: ProviderActor(settings, transport, failures_to_crash=100))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        refused = [await ref.ask(_call(n)) for n in range(2)]
        started = trio.current_time()
        answered = [await ref.ask(_call(n)) for n in range(2, 4)]
        waited = trio.current_time() - started
        supervisor.stop()
    assert [r.sent for r in refused] == [False, False] and all(r.ok for r in answered)
    assert waited == 0, "the two refused calls' requests and tokens were given back"


@pytest.mark.trio
async def test_a_call_whose_caller_gave_up_while_it_waited_gives_its_request_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One request a minute: a call abandoned in the queue took the next minute's request, unsent, so the call
    behind it waited two minutes."""
    settings = ProviderSettings(name="p", protocol="openai", base_url="http://provider.invalid/v1", model="m",
                                input_price_nd_per_mtok=1, output_price_nd_per_mtok=1, max_concurrency=2,
                                requests_per_minute=1)
    transport = ScriptedTransport(default=openai_ok())
    supervisor = Supervisor(CODEC)
    ref = supervisor.add("p", lambda: ProviderActor(settings, transport, failures_to_crash=100))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        started = trio.current_time()
        assert (await ref.ask(_call(0))).ok
        with pytest.raises(AskTimeout):
            await ref.ask(_call(1), timeout=10.0)
        assert (await ref.ask(_call(2))).ok
        waited = trio.current_time() - started
        supervisor.stop()
    assert len(transport.calls) == 2, "the abandoned call was never sent"
    assert waited == pytest.approx(60.0), "it waits for the minute the abandoned call gave back, not two"

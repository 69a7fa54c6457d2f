"""The telemetry client: a request's record waits out the linger, then goes with the others; nothing deferred is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.runtime.actor import Actor
from actors.runtime.supervisor import Supervisor
from actors.telemetry.client import TelemetryClient
from actors.telemetry.events import FeedbackGiven, FlushTelemetry


class _Recorder(Actor):
    """A collector in memory: what arrived, and when (virtual time)."""

    def __init__(self, arrivals: list[tuple[float, object]]) -> None:
        self.arrivals = arrivals

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, FlushTelemetry):
            return msg
        self.arrivals.append((trio.current_time(), msg))
        return None


def feedback(i: int) -> FeedbackGiven:
    return FeedbackGiven(1.7e9 + i, f"r{i}", 0.5)


@asynccontextmanager
async def recording_client() -> AsyncIterator[tuple[TelemetryClient, list[tuple[float, object]]]]:
    """A running client in front of a recorder; leaving closes the client, then stops the supervisor."""
    arrivals: list[tuple[float, object]] = []
    supervisor = Supervisor(CODEC)
    client = TelemetryClient(supervisor.add("telemetry", lambda: _Recorder(arrivals)))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        tg.start_soon(client.run)
        yield client, arrivals
        client.close()
        supervisor.stop()


@pytest.mark.trio
async def test_deferred_records_wait_out_the_linger_then_go_together(autojump_clock: trio.testing.MockClock) -> None:
    async with recording_client() as (client, arrivals):
        start = trio.current_time()
        client.defer(feedback(1))
        await trio.sleep(client.LINGER_S / 2)
        client.defer(feedback(2))
        client.emit(feedback(3))
        await trio.sleep(client.LINGER_S)
    assert [msg for _, msg in arrivals] == [feedback(3), feedback(1), feedback(2)], "emit goes at once, defer waits"
    assert [when - start for when, _ in arrivals[1:]] == pytest.approx([client.LINGER_S] * 2)


@pytest.mark.trio
async def test_a_full_batch_goes_without_waiting(autojump_clock: trio.testing.MockClock) -> None:
    async with recording_client() as (client, arrivals):
        start = trio.current_time()
        for i in range(client.DEFERRED_BATCH):
            client.defer(feedback(i))
        await trio.sleep(client.LINGER_S / 4)
        sent = len(arrivals)
    assert sent == client.DEFERRED_BATCH and arrivals[-1][0] - start < client.LINGER_S


@pytest.mark.trio
async def test_flush_and_close_send_what_is_deferred_and_later_records_go_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with recording_client() as (client, arrivals):
        client.defer(feedback(1))
        await client.flush()
        flushed = [msg for _, msg in arrivals]
        client.defer(feedback(2))
        client.close()
        client.defer(feedback(3))
        await client.flush()
    assert flushed == [feedback(1)]
    assert [msg for _, msg in arrivals] == [feedback(1), feedback(2), feedback(3)]


@pytest.mark.trio
async def test_an_event_that_cannot_be_encoded_is_logged_and_the_rest_still_go(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """One bad record (here a lone surrogate, which the request checks keep out) must not stop the batch it
    was deferred with, nor the client's task."""
    unencodable = FeedbackGiven(1.7e9, "r\ud800", 0.5)
    async with recording_client() as (client, arrivals):
        client.defer(feedback(1))
        client.defer(unencodable)
        client.defer(feedback(2))
        await trio.sleep(client.LINGER_S * 2)
        client.emit(unencodable)
        client.defer(feedback(3))
        await trio.sleep(client.LINGER_S * 2)
    assert [msg for _, msg in arrivals] == [feedback(1), feedback(2), feedback(3)]
    assert client.unencodable == 2
    assert "cannot be encoded" in caplog.text and "FeedbackGiven" in caplog.text

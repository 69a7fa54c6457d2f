"""The actor runtime: ask/tell, timeouts, one-for-one restarts, and clean shutdown."""

from __future__ import annotations

import logging

import anyio
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import ActorStopped, AskTimeout, HandlerFailed, InvalidRequest, JournalError
from actors.messages import ChatMessage
from actors.runtime.actor import Actor, BrokenInvariant
from actors.runtime.breaker import BreakerSettings, CircuitState
from actors.runtime.supervisor import Supervisor


class Echo(Actor):
    """Replies with the content; "boom" breaks its state (a crash); "bad" fails that message alone;
    "silent" never answers."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []

    async def on_start(self) -> None:
        self.log.append("start")

    async def on_stop(self) -> None:
        self.log.append("stop")

    async def handle(self, msg: ChatMessage, corr: int) -> ChatMessage | None:
        if msg.content == "boom":
            raise BrokenInvariant("boom")
        if msg.content == "bad":
            raise RuntimeError("bad input")
        if msg.content == "refused":
            raise InvalidRequest("refused on purpose")
        if msg.content == "silent":
            return None
        if msg.content == "slow":
            await anyio.sleep(3600)
        self.log.append(msg.content)
        return ChatMessage("echo", msg.content)


@pytest.mark.anyio
async def test_ask_returns_the_reply_and_tell_is_delivered(anyio_backend: str) -> None:
    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("echo", lambda: Echo(log))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert await ref.ask(ChatMessage("u", "hi"), timeout=5) == ChatMessage("echo", "hi")
        await ref.tell(ChatMessage("u", "fire"))
        assert await ref.ask(ChatMessage("u", "after"), timeout=5) == ChatMessage("echo", "after")
        sup.stop()
    assert log == ["start", "hi", "fire", "after", "stop"]


@pytest.mark.anyio
async def test_a_tell_with_room_returns_before_anyone_else_runs(anyio_backend: str) -> None:
    """A tell is not a checkpoint while the inbox has room: the receiver (and every other
    ready task) runs after the teller has gone on, not on the teller's latency."""
    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("echo", lambda: Echo(log))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await ref.tell(ChatMessage("u", "first"))
        await ref.tell(ChatMessage("u", "second"))
        handled_meanwhile = list(log)
        assert await ref.ask(ChatMessage("u", "after"), timeout=5) == ChatMessage("echo", "after")
        sup.stop()
    assert handled_meanwhile == ["start"]
    assert log == ["start", "first", "second", "after", "stop"]


@pytest.mark.anyio
async def test_a_flooded_actor_serves_in_order_and_lets_the_others_run(anyio_backend: str) -> None:
    """Queued messages are served back to back, in order, but never more than BURST before a yield."""
    from actors.runtime.actor import BURST

    log: list[str] = []
    sup = Supervisor(CODEC)
    flooded = sup.add("flooded", lambda: Echo(log))
    other = sup.add("other", lambda: Echo(log))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        for i in range(3 * BURST):
            await flooded.tell(ChatMessage("u", f"m{i}"))
        await other.tell(ChatMessage("u", "other"))
        assert await flooded.ask(ChatMessage("u", "last"), timeout=5) == ChatMessage("echo", "last")
        sup.stop()
    served = [entry for entry in log if entry.startswith("m")]
    assert served == [f"m{i}" for i in range(3 * BURST)]
    assert log.index("other") < log.index(f"m{2 * BURST}"), "the other actor ran before the flood was through"


class Batcher(Echo):
    """Echo that notes where each burst of served messages ends."""

    async def after_burst(self, drained: bool) -> None:
        self.log.append("|" if drained else "/")


@pytest.mark.anyio
async def test_after_burst_runs_once_the_queue_is_served_and_every_burst_of_a_flood(anyio_backend: str) -> None:
    """What a batching actor (the ledger) finishes there covers every message queued before it."""
    from actors.runtime.actor import BURST

    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("batcher", lambda: Batcher(log))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        for i in range(3):
            ref.tell_nowait(ChatMessage("u", f"a{i}"))
        assert await ref.ask(ChatMessage("u", "a3"), timeout=5) == ChatMessage("echo", "a3")
        for i in range(BURST + 2):
            ref.tell_nowait(ChatMessage("u", f"b{i}"))
        assert await ref.ask(ChatMessage("u", "last"), timeout=5) == ChatMessage("echo", "last")
        sup.stop()
    assert log[:6] == ["start", "a0", "a1", "a2", "a3", "|"], "one burst end for four queued messages"
    flood = log[6:log.index("last") + 2]
    assert flood == [f"b{i}" for i in range(BURST)] + ["/"] + [f"b{i}" for i in range(BURST, BURST + 2)] + ["last", "|"]


@pytest.mark.anyio
async def test_crash_fails_the_waiting_ask_and_the_actor_restarts(anyio_backend: str) -> None:
    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("echo", lambda: Echo(log), BreakerSettings(backoff_initial_s=0.001))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        with pytest.raises(ActorStopped, match="echo crashed"):
            await ref.ask(ChatMessage("u", "boom"), timeout=5)
        assert await ref.ask(ChatMessage("u", "back"), timeout=5) == ChatMessage("echo", "back")
        assert sup.health()["echo"]["restarts"] == 1
        sup.stop()
    assert log.count("start") == 2 and log.count("stop") == 2


@pytest.mark.anyio
async def test_an_unexpected_crash_is_logged_with_its_traceback_once_then_in_one_line(
        anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    """A crash nobody meant (a broken invariant, a bug) is logged with the stack that raised it, the first time."""
    sup = Supervisor(CODEC)
    ref = sup.add("echo", Echo, BreakerSettings(backoff_initial_s=0.001))
    with caplog.at_level(logging.WARNING, logger="actors.runtime.supervisor"):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            for _ in range(2):
                with pytest.raises(ActorStopped):
                    await ref.ask(ChatMessage("u", "boom"), timeout=5)
                assert await ref.ask(ChatMessage("u", "back"), timeout=5) == ChatMessage("echo", "back")
            sup.stop()
    first, again = (r for r in caplog.records if r.getMessage().startswith("echo crashed"))
    assert first.levelname == "ERROR" and "Traceback" in first.getMessage() and "in handle" in first.getMessage()
    assert again.levelname == "WARNING" and "Traceback" not in again.getMessage()


@pytest.mark.trio
async def test_shutdown_ends_every_task_even_with_work_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    sup = Supervisor(CODEC, stop_grace_s=2)
    ref = sup.add("echo", lambda: Echo(log))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await ref.tell(ChatMessage("u", "slow"))
            await trio.sleep(1)
            stopped_at = trio.current_time()
            sup.stop()
    assert trio.current_time() - stopped_at == pytest.approx(2), "the hung handler is cancelled after the grace"
    assert log == ["start", "stop"], "on_stop still ran"


@pytest.mark.anyio
async def test_one_bad_message_fails_its_asker_alone(anyio_backend: str) -> None:
    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("echo", lambda: Echo(log))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        with pytest.raises(HandlerFailed, match="RuntimeError: bad input"):
            await ref.ask(ChatMessage("u", "bad"), timeout=5)
        with pytest.raises(InvalidRequest, match="refused on purpose"):
            await ref.ask(ChatMessage("u", "refused"), timeout=5)
        await ref.tell(ChatMessage("u", "bad"))
        assert await ref.ask(ChatMessage("u", "after"), timeout=5) == ChatMessage("echo", "after")
        assert sup.health()["echo"]["restarts"] == 0
        sup.stop()
    assert log == ["start", "after", "stop"]


class Locking(Actor):
    """Takes a resource in on_start, then fails: on_stop must still give it back."""

    held: list[str] = []

    async def on_start(self) -> None:
        self.held.append("lock")
        raise JournalError("the journal is corrupt at byte 16")

    async def on_stop(self) -> None:
        self.held.remove("lock")


@pytest.mark.anyio
async def test_a_first_start_that_fails_cleans_up_and_fails_run_with_its_cause(anyio_backend: str) -> None:
    sup = Supervisor(CODEC)
    sup.add("locking", Locking)
    with pytest.raises(JournalError, match="corrupt at byte 16"):
        await sup.run()
    assert Locking.held == []


@pytest.mark.trio
async def test_ask_timeout_raises_typed_error_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    sup = Supervisor(CODEC)
    ref = sup.add("echo", Echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        start = trio.current_time()
        with pytest.raises(AskTimeout, match="echo did not answer ChatMessage within 60"):
            await ref.ask(ChatMessage("u", "silent"), timeout=60)
        assert trio.current_time() - start == pytest.approx(60)
        sup.stop()


@pytest.mark.trio
async def test_mixed_ask_timeouts_each_end_at_their_own_deadline_and_answered_ones_leave_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One task keeps every ask's deadline: each unanswered ask times out at exactly its
    own deadline, whatever order they were armed in, and the entries of answered asks
    do not pile up."""
    sup = Supervisor(CODEC)
    ref = sup.add("echo", Echo)
    ended: dict[float, float] = {}

    async def silent(timeout: float) -> None:
        start = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(ChatMessage("u", "silent"), timeout=timeout)
        ended[timeout] = trio.current_time() - start

    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert sup.board.keeps_deadlines
        async with trio.open_nursery() as asks:
            for timeout in (90.0, 5.0, 30.0, 0.5, 60.0):
                asks.start_soon(silent, timeout)
            for i in range(2000):
                assert await ref.ask(ChatMessage("u", f"m{i}"), timeout=10) == ChatMessage("echo", f"m{i}")
            await trio.sleep(1)
            assert len(sup.board._deadlines) < 200, "answered asks' entries are dropped"  # noqa: SLF001
        sup.stop()
    assert ended == {t: pytest.approx(t) for t in (90.0, 5.0, 30.0, 0.5, 60.0)}


@pytest.mark.anyio
async def test_an_ask_waiting_when_the_system_stops_fails_as_stopped(anyio_backend: str) -> None:
    sup = Supervisor(CODEC, stop_grace_s=0.01)
    ref = sup.add("echo", Echo)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        call = ref.call_nowait(ChatMessage("u", "slow"))
        assert call is not None
        sup.stop()
        with anyio.fail_after(30), pytest.raises(ActorStopped):
            await call.result(timeout=3600)


@pytest.mark.trio
async def test_restart_backoff_grows_and_intensity_opens_the_circuit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = BreakerSettings(
        max_restarts=3, window_s=600, backoff_initial_s=1, backoff_factor=2, backoff_cap_s=60, cooldown_s=300
    )
    starts: list[float] = []

    class Recorder(Echo):
        async def on_start(self) -> None:
            starts.append(trio.current_time())

    sup = Supervisor(CODEC)
    ref = sup.add("echo", Recorder, settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for _ in range(4):
            with pytest.raises(ActorStopped):
                await ref.ask(ChatMessage("u", "boom"), timeout=1000)
            await trio.sleep(0)
        breaker = sup.breaker("echo")
        assert breaker.state is CircuitState.OPEN
        await trio.sleep(400)
        sup.stop()
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps[:3] == [1, 2, 4]
    assert gaps[3] == pytest.approx(300)
    assert breaker.acquire(trio.current_time()) is not None
    assert breaker.state is CircuitState.HALF_OPEN


@pytest.mark.trio
async def test_queued_messages_die_with_the_crash(autojump_clock: trio.testing.MockClock) -> None:
    """A restarted actor must not act on work whose caller was already told it failed."""
    log: list[str] = []
    sup = Supervisor(CODEC)
    ref = sup.add("echo", lambda: Echo(log), BreakerSettings(backoff_initial_s=5))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref.tell_nowait(ChatMessage("u", "boom"))
        ref.tell_nowait(ChatMessage("u", "queued-behind-crash"))
        await trio.sleep(10)
        assert await ref.ask(ChatMessage("u", "fresh"), timeout=5) == ChatMessage("echo", "fresh")
        sup.stop()
    assert "queued-behind-crash" not in log


class Later(Actor):
    """Answers ten seconds after it is asked; "fail" fails instead."""

    async def handle(self, msg: ChatMessage, corr: int) -> ChatMessage:
        await anyio.sleep(10)
        if msg.content == "fail":
            raise RuntimeError("failed late")
        return ChatMessage("late", msg.content)


@pytest.mark.trio
async def test_a_forwarded_ask_gives_its_late_reply_to_its_taker_and_a_failing_taker_hurts_no_one(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An asker that stops waiting can still take the answer (the attempt settles a held reservation on it)."""
    sup = Supervisor(CODEC)
    ref = sup.add("later", Later)
    got: list[object] = []

    def raising(reply: object) -> None:
        raise ValueError(f"taker broke on {reply}")

    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for content, taker in (("ok", got.append), ("fail", got.append), ("third", raising)):
            call = ref.call_nowait(ChatMessage("u", content))
            assert call is not None
            with pytest.raises(AskTimeout):
                await call.result(1)
            call.forward(taker)
        await trio.sleep(60)
        assert await ref.ask(ChatMessage("u", "still"), timeout=20) == ChatMessage("late", "still")
        assert sup.board.statistics()["waiting_asks"] == 0
        sup.stop()
    assert got == [ChatMessage("late", "ok"), None]
    assert "the taker of a forwarded reply failed" in caplog.text and sup.health()["later"]["restarts"] == 0

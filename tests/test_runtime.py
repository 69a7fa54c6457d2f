"""The actor runtime: ask/tell, timeouts, one-for-one restarts, and clean shutdown."""

from __future__ import annotations

import anyio
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import ActorStopped, AskTimeout
from actors.messages import ChatMessage
from actors.runtime.actor import Actor
from actors.runtime.breaker import BreakerSettings, CircuitState
from actors.runtime.supervisor import Supervisor


class Echo(Actor):
    """Replies with the content; "boom" crashes it; "silent" never answers."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []

    async def on_start(self) -> None:
        self.log.append("start")

    async def on_stop(self) -> None:
        self.log.append("stop")

    async def handle(self, msg: ChatMessage, corr: int) -> ChatMessage | None:
        if msg.content == "boom":
            raise RuntimeError("boom")
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
async def test_shutdown_ends_every_task_even_with_work_in_flight(anyio_backend: str) -> None:
    sup = Supervisor(CODEC)
    ref = sup.add("echo", Echo)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await ref.tell(ChatMessage("u", "slow"))
            await anyio.sleep(0.01)
            sup.stop()
            tg.cancel_scope.cancel()


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

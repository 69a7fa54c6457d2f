"""The batch writers' doorbell: urgent work goes at once, other work waits out the linger."""

from __future__ import annotations

import anyio
import pytest
import trio
import trio.testing

from actors.runtime.doorbell import Doorbell


@pytest.mark.anyio
async def test_an_urgent_ring_wakes_the_writer_at_once(anyio_backend: str) -> None:
    bell = Doorbell()
    woken: list[str] = []

    async def writer() -> None:
        await bell.wait(3600)
        woken.append("woken")

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        await anyio.wait_all_tasks_blocked()
        bell.ring(urgent=True)
        with anyio.fail_after(5):
            while not woken:
                await anyio.sleep(0)


@pytest.mark.trio
async def test_a_plain_ring_waits_out_the_linger(autojump_clock: trio.testing.MockClock) -> None:
    bell = Doorbell()
    bell.ring(urgent=False)
    started = trio.current_time()
    await bell.wait(0.05)
    assert trio.current_time() - started == pytest.approx(0.05)


@pytest.mark.trio
async def test_an_urgent_ring_cuts_the_linger_short(autojump_clock: trio.testing.MockClock) -> None:
    bell = Doorbell()
    bell.ring(urgent=False)

    async def urgent_later() -> None:
        await trio.sleep(0.01)
        bell.ring(urgent=True)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(urgent_later)
        await bell.wait(0.05)
    assert trio.current_time() - started == pytest.approx(0.01)


@pytest.mark.trio
async def test_rings_while_the_writer_works_are_not_lost(autojump_clock: trio.testing.MockClock) -> None:
    bell = Doorbell()
    bell.ring(urgent=True)
    await bell.wait(0.05)
    bell.ring(urgent=True)
    with trio.fail_after(0.001):
        await bell.wait(0.05)


@pytest.mark.trio
async def test_the_writer_sleeps_until_the_next_ring(autojump_clock: trio.testing.MockClock) -> None:
    bell = Doorbell()
    bell.ring(urgent=True)
    await bell.wait(0.05)
    with trio.move_on_after(60) as idle:
        await bell.wait(0.05)
    assert idle.cancelled_caught

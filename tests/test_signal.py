"""The ask's reply slot: wakes its one waiter, survives a cancelled wait, refuses a second waiter."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from actors.runtime.signal import Signal


@pytest.mark.anyio
async def test_set_wakes_the_waiter_and_a_set_signal_returns_at_once(anyio_backend: str) -> None:
    signal = Signal()
    woken: list[str] = []

    async def waiter() -> None:
        await signal.wait()
        woken.append("woken")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woken == [] and not signal.is_set()
        signal.set()
    assert woken == ["woken"] and signal.is_set()
    with anyio.fail_after(1):
        await signal.wait()


@pytest.mark.anyio
async def test_a_cancelled_wait_leaves_the_signal_usable(anyio_backend: str) -> None:
    signal = Signal()
    with anyio.move_on_after(0.01) as scope:
        await signal.wait()
    assert scope.cancelled_caught and not signal.is_set()
    signal.set()
    with anyio.fail_after(1):
        await signal.wait()


@pytest.mark.anyio
async def test_set_after_the_waiter_was_cancelled_is_harmless(anyio_backend: str) -> None:
    signal = Signal()
    async with anyio.create_task_group() as tg:
        tg.start_soon(signal.wait)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        signal.set()
    assert signal.is_set()


@pytest.mark.anyio
async def test_a_wait_on_a_set_signal_is_still_a_checkpoint(anyio_backend: str) -> None:
    signal = Signal()
    signal.set()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await signal.wait()
        pytest.fail("a cancelled scope must stop a wait on a set signal")


@pytest.mark.anyio
async def test_a_second_waiter_is_refused(anyio_backend: str) -> None:
    signal = Signal()
    async with anyio.create_task_group() as tg:
        tg.start_soon(signal.wait)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="one waiter"):
            await signal.wait()
        signal.set()

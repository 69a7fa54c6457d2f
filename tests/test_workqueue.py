"""A provider's call queue: first in, first out, straight to an idle worker, nothing lost to a cancellation."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from actors.runtime.workqueue import WorkQueue


@pytest.mark.anyio
async def test_items_reach_waiting_workers_in_order_and_the_longest_idle_first(anyio_backend: str) -> None:
    queue: WorkQueue[int] = WorkQueue()
    taken: list[tuple[str, int]] = []

    async def worker(name: str) -> None:
        taken.append((name, await queue.get()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "first")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(worker, "second")
        await anyio.wait_all_tasks_blocked()
        queue.put(1)
        queue.put(2)
        assert len(queue) == 0, "both items went straight to idle workers"
    assert sorted(taken) == [("first", 1), ("second", 2)], "the longest idle took the first item"


@pytest.mark.anyio
async def test_queued_items_are_taken_in_order_without_yielding(anyio_backend: str) -> None:
    queue: WorkQueue[int] = WorkQueue()
    for item in range(3):
        queue.put(item)
    assert len(queue) == 3
    others_ran: list[bool] = []

    async def other() -> None:
        others_ran.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        assert [await queue.get() for _ in range(3)] == [0, 1, 2]
        assert others_ran == [], "a queued item is taken without letting other tasks run"


@pytest.mark.anyio
async def test_a_worker_cancelled_as_it_is_handed_an_item_gives_it_back(anyio_backend: str) -> None:
    queue: WorkQueue[str] = WorkQueue()
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.get)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        queue.put("call")
    assert len(queue) == 1
    with anyio.fail_after(1):
        assert await queue.get() == "call"


@pytest.mark.anyio
async def test_a_cancelled_idle_worker_is_not_handed_anything(anyio_backend: str) -> None:
    queue: WorkQueue[str] = WorkQueue()
    with anyio.move_on_after(0.01):
        await queue.get()
    queue.put("call")
    assert len(queue) == 1, "the item waits in the queue, not with a worker that is gone"


@pytest.mark.anyio
async def test_close_drains_what_is_queued_then_ends_every_worker(anyio_backend: str) -> None:
    queue: WorkQueue[int] = WorkQueue()
    ended: list[str] = []

    async def idle_worker() -> None:
        with pytest.raises(anyio.EndOfStream):
            await queue.get()
        ended.append("idle")

    async with anyio.create_task_group() as tg:
        tg.start_soon(idle_worker)
        await anyio.wait_all_tasks_blocked()
        queue.close()
    assert ended == ["idle"]
    with pytest.raises(anyio.ClosedResourceError):
        queue.put(1)

    queue = WorkQueue()
    queue.put(7)
    queue.close()
    assert await queue.get() == 7
    with pytest.raises(anyio.EndOfStream):
        await queue.get()


@pytest.mark.anyio
async def test_a_worker_cancelled_after_close_woke_it_ends_cancelled_not_with_an_error(anyio_backend: str) -> None:
    """A stop closes the queue and cancels the workers in the same step: the cancellation must win quietly."""
    queue: WorkQueue[int] = WorkQueue()
    outcomes: list[str] = []

    async def worker() -> None:
        try:
            await queue.get()
        except anyio.get_cancelled_exc_class():
            outcomes.append("cancelled")
            raise
        except anyio.EndOfStream:
            outcomes.append("ended")

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        queue.close()
    assert outcomes in (["cancelled"], ["ended"])

"""Admission that waits: a reservation blocked only by reserved money queues until settles free it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from actors.catalog import CODEC
from actors.ledger.actor import LedgerActor, open_core
from actors.ledger.client import LedgerClient
from actors.ledger.core import LedgerCore
from actors.ledger.journal import MemoryStorage
from actors.ledger.messages import Hold, JournalEntry, Release, ReserveReply, Settle
from actors.ledger.settings import LedgerSettings
from actors.runtime.supervisor import Supervisor
from tests.test_journal import journal_entries

LIMIT = 1_000
BOUND_S = 3_600
"""Virtual seconds a test may take: one that waits for a reply that never comes fails instead of hanging."""


@asynccontextmanager
async def running_ledger(storage: MemoryStorage | None = None, limit: int = LIMIT) -> AsyncIterator[LedgerClient]:
    settings = LedgerSettings(limit_nd=limit, journal_path="memory" if storage else None)
    factory = (lambda: storage) if storage is not None else None
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings, storage_factory=factory)))
    async with anyio.create_task_group() as tasks:
        await tasks.start(supervisor.run)
        with anyio.fail_after(BOUND_S):
            yield ledger
        supervisor.stop()


async def reserve(ledger: LedgerClient, rid: str, amount: int, wait_s: float = 0.0) -> ReserveReply:
    return await ledger.reserve(rid, "q", "t", "m", amount, wait_s)


def recorder(ledger: LedgerClient, replies: dict[str, ReserveReply]) -> Callable[..., object]:
    """An asker to start in the background: its reply lands in `replies` once it is answered."""

    async def ask(rid: str, amount: int, wait_s: float) -> None:
        replies[rid] = await reserve(ledger, rid, amount, wait_s)

    return ask


@pytest.mark.trio
async def test_a_reservation_blocked_by_reserved_money_waits_and_is_granted_once_it_settles(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = MemoryStorage()
    replies: dict[str, ReserveReply] = {}
    async with running_ledger(storage) as ledger:
        assert (await reserve(ledger, "a", 600)).granted
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder(ledger, replies), "b", 600, 30.0)
            await trio.sleep(2.0)
            assert replies == {}, "b waits while a's worst case is reserved"
            assert (await ledger.status()).waiting == 1
            await ledger.tell(Settle("a", 100))
        status = await ledger.status()
    assert replies["b"].granted and replies["b"].waited_s == pytest.approx(2.0)
    assert (status.settled_nd, status.reserved_nd, status.waiting, status.waited) == (100, 600, 0, 1)
    on_disk = open_core(LedgerSettings(limit_nd=LIMIT), storage).status()
    assert (on_disk.settled_nd, on_disk.reserved_nd) == (100, 600), "the grant and the settle it needed are durable"


@pytest.mark.trio
async def test_money_truly_gone_is_refused_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        await ledger.settle("a", 600)
        started = trio.current_time()
        reply = await reserve(ledger, "b", 600, wait_s=30.0)
    assert not reply.granted and not reply.waitable
    assert trio.current_time() == started, "no wait when settled + worst case passes the limit"


@pytest.mark.trio
async def test_held_money_does_not_make_a_wait_worth_it(autojump_clock: trio.testing.MockClock) -> None:
    """A held reservation counts as spent until reconciled: no settle will free it."""
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        await ledger.tell(Hold("a"))
        reply = await reserve(ledger, "b", 600, wait_s=30.0)
    assert not reply.granted and not reply.waitable and reply.waited_s == 0.0


@pytest.mark.trio
async def test_a_waiter_is_refused_as_soon_as_a_hold_makes_its_money_gone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The reservation it waited on will not settle: a held one counts as spent until reconciled."""
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        async with trio.open_nursery() as nursery:
            replies: list[ReserveReply] = []

            async def wait() -> None:
                replies.append(await reserve(ledger, "b", 600, wait_s=30.0))

            nursery.start_soon(wait)
            await trio.sleep(1.0)
            started = trio.current_time()
            await ledger.tell(Hold("a"))
    assert not replies[0].granted and not replies[0].waitable
    assert trio.current_time() == started, "refused at the hold, not when its wait ran out"


@pytest.mark.trio
async def test_a_wait_that_runs_out_is_refused_naming_the_wait(autojump_clock: trio.testing.MockClock) -> None:
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        started = trio.current_time()
        reply = await reserve(ledger, "b", 600, wait_s=5.0)
        status = await ledger.status()
    assert not reply.granted and reply.waitable
    assert trio.current_time() - started == pytest.approx(5.0)
    assert "waited 5.0s for reserved money" in reply.reason
    assert (status.waiting, status.wait_expired, status.reserved_nd) == (0, 1, 600)


@pytest.mark.trio
async def test_first_in_first_out_a_small_request_does_not_overtake_a_waiting_large_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """c (50) would fit at once, but b (800) waits ahead of it: c queues behind b and is granted after it."""
    storage = MemoryStorage()
    replies: dict[str, ReserveReply] = {}
    async with running_ledger(storage) as ledger:
        await reserve(ledger, "a", 900)
        async with trio.open_nursery() as nursery:
            ask = recorder(ledger, replies)
            nursery.start_soon(ask, "b", 800, 30.0)
            await trio.sleep(1.0)
            nursery.start_soon(ask, "c", 50, 30.0)
            await trio.sleep(1.0)
            assert replies == {}, "c waits behind b although 100 nd are free"
            await ledger.tell(Settle("a", 100))
        status = await ledger.status()
    granted = [e.reservation_id for e in journal_entries(storage) if e.op == "reserve"]
    assert granted == ["a", "b", "c"] and replies["b"].granted and replies["c"].granted
    assert status.settled_nd + status.reserved_nd == 950


@pytest.mark.trio
async def test_a_head_whose_wait_runs_out_lets_the_next_one_through(autojump_clock: trio.testing.MockClock) -> None:
    replies: dict[str, ReserveReply] = {}
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 900)
        async with trio.open_nursery() as nursery:
            ask = recorder(ledger, replies)
            nursery.start_soon(ask, "b", 800, 3.0)
            await trio.sleep(1.0)
            nursery.start_soon(ask, "c", 50, 30.0)
    assert sorted(replies) == ["b", "c"]
    assert not replies["b"].granted and replies["c"].granted
    assert replies["c"].waited_s == pytest.approx(2.0), "c went through when b's wait ran out"


@pytest.mark.trio
async def test_a_waiter_whose_asker_gives_up_is_withdrawn_and_never_granted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        with trio.move_on_after(1.0):
            await reserve(ledger, "b", 600, wait_s=30.0)
        ack = await ledger.release("b")
        await ledger.settle("a", 100)
        status = await ledger.status()
    assert ack.outcome == "withdrawn"
    assert (status.settled_nd, status.reserved_nd, status.outstanding, status.waiting) == (100, 0, 0, 0)


@pytest.mark.anyio
async def test_with_no_time_to_wait_a_blocked_reservation_is_refused_at_once_and_says_why(anyio_backend: str) -> None:
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        reply = await reserve(ledger, "b", 600)
    assert not reply.granted and reply.waitable
    assert "reserved by requests in flight" in reply.reason


@pytest.mark.anyio
async def test_releases_and_settles_admit_waiters_in_order_on_both_backends(anyio_backend: str) -> None:
    storage = MemoryStorage()
    replies: dict[str, ReserveReply] = {}
    async with running_ledger(storage) as ledger:
        await reserve(ledger, "a", 1000)
        async with anyio.create_task_group() as tasks:
            ask = recorder(ledger, replies)
            for i in range(5):
                tasks.start_soon(ask, f"w{i}", 200, 2.0)
                while (await ledger.status()).waiting < i + 1:
                    await anyio.sleep(0)
            await ledger.tell(Release("a"))
        status = await ledger.status()
    assert sorted(replies) == [f"w{i}" for i in range(5)]
    assert all(r.granted for r in replies.values()) and status.reserved_nd == 1000
    assert [e.reservation_id for e in journal_entries(storage) if e.op == "reserve"] == ["a"] + sorted(replies)


# -- the core's classification of a denial -------------------------------------------------------

@given(
    limit=st.integers(1, 10_000),
    settled=st.integers(0, 10_000),
    open_amounts=st.lists(st.integers(0, 3_000), max_size=4),
    held_amounts=st.lists(st.integers(0, 3_000), max_size=3),
    amount=st.integers(0, 10_000),
)
def test_a_denial_is_waitable_exactly_when_open_reservations_stand_in_the_way(
    limit: int, settled: int, open_amounts: list[int], held_amounts: list[int], amount: int
) -> None:
    core = LedgerCore(LedgerSettings(limit_nd=10**9), wall_clock=lambda: 1.7e9)
    seq = 0

    def apply(op: str, rid: str, value: int = 0) -> None:
        nonlocal seq
        seq += 1
        core.apply(JournalEntry(seq, op, rid, 1.7e9, value, "q", "t", "m"))

    apply("reserve", "settled", settled)
    apply("settle", "settled", settled)
    for i, value in enumerate(open_amounts):
        apply("reserve", f"open{i}", value)
    for i, value in enumerate(held_amounts):
        apply("reserve", f"held{i}", value)
        apply("hold", f"held{i}")
    core.settings = LedgerSettings(limit_nd=limit)
    decision = core.check("t", amount, 1.7e9)
    in_flight = sum(open_amounts) + sum(held_amounts)
    assert decision.granted == (settled + in_flight + amount <= limit)
    assert decision.waitable == (not decision.granted and settled + sum(held_amounts) + amount <= limit)


@pytest.mark.trio
async def test_the_queue_counts_every_wait_and_its_length(autojump_clock: trio.testing.MockClock) -> None:
    """What /metrics shows: waits entered, expired, and the seconds spent waiting."""
    await trio.sleep(100.0)
    async with running_ledger() as ledger:
        await reserve(ledger, "a", 600)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reserve, ledger, "b", 600, 30.0)
            await trio.sleep(2.0)
            await ledger.tell(Settle("a", 300))
        assert (await reserve(ledger, "c", 600, wait_s=5.0)).waited_s == pytest.approx(5.0)
        with trio.move_on_after(1.0):
            await reserve(ledger, "d", 600, wait_s=30.0)
        await ledger.release("d")
        status = await ledger.status()
    assert (status.waited, status.wait_expired, status.waiting, status.waiting_nd) == (3, 1, 0, 0)
    assert status.wait_s_total == pytest.approx(8.0), "2 s for b, 5 s for c, 1 s for d"


@pytest.mark.trio
async def test_only_a_settle_past_its_reservation_is_reported_as_an_overrun(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from actors.telemetry.events import LedgerOverrun

    events: list[object] = []
    settings = LedgerSettings(limit_nd=LIMIT)
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings, on_event=events.append)))
    async with anyio.create_task_group() as tasks:
        await tasks.start(supervisor.run)
        assert (await reserve(ledger, "within", 100)).granted and (await reserve(ledger, "past", 100)).granted
        await ledger.settle("within", 80)
        await ledger.settle("past", 130)
        supervisor.stop()
    overruns = [e for e in events if isinstance(e, LedgerOverrun)]
    assert [(e.reservation_id, e.reserved_nd, e.actual_nd) for e in overruns] == [("past", 100, 130)]

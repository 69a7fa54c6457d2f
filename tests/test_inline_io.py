"""Journal writes on the event loop only while the disk proves fast, in a worker thread otherwise."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.catalog import CODEC
from actors.ledger.actor import LedgerActor
from actors.ledger.client import LedgerClient
from actors.ledger.journal import MemoryStorage
from actors.ledger.settings import LedgerSettings
from actors.runtime.inline_io import LEAVE_AFTER, RECENT, InlineIO
from actors.runtime.supervisor import Supervisor
from orchestrator.config import load_config

LIMIT = 0.002
FAST, SLOW = 0.0001, 0.05
WINDOW = 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_writes(durations: list[float], limit: float = LIMIT) -> list[bool]:
    """Whether each write, taking the given seconds by the fake clock, ran on the event loop's thread."""
    clock = FakeClock()
    writes = InlineIO(limit, WINDOW, clock)
    where: list[bool] = []

    async def main() -> None:
        loop_thread = threading.get_ident()
        for seconds in durations:
            def work(seconds: float = seconds) -> None:
                where.append(threading.get_ident() == loop_thread)
                clock.now += seconds

            await writes.run(work)

    anyio.run(main)
    return where


def test_a_fast_disk_is_written_inline_and_a_limit_of_0_never() -> None:
    assert run_writes([FAST] * 8) == [True] * 8
    assert run_writes([FAST] * 8, limit=0) == [False] * 8


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=80))
def test_the_loop_is_left_after_slow_writes_among_the_recent_ones_for_at_least_a_window(slow: list[bool]) -> None:
    inline = run_writes([SLOW if s else FAST for s in slow])
    assert inline[0], "tried on the loop first"
    stay: list[bool] = []
    """Whether each write on the loop since the loop was last entered from the thread (or the start) was slow."""
    for i in range(len(slow) - 1):
        if not inline[i]:
            continue
        probe = i > 0 and not inline[i - 1]
        stay = [slow[i]] if probe else [*stay, slow[i]]
        left = not inline[i + 1]
        if not slow[i]:
            assert not left, "a fast write on the loop keeps the next there"
            continue
        spell = sum(stay[-RECENT:]) >= LEAVE_AFTER
        assert left == (probe or spell), "a slow probe, or enough slow writes among the recent ones, leave the loop"
        if left:
            assert not any(inline[i + 1 : i + 1 + WINDOW]), "then a window of writes in the thread"
            stay = []
    stalls = sum(1 for s, on_loop in zip(slow, inline) if s and on_loop)
    assert stalls <= LEAVE_AFTER * (1 + len(slow) // (WINDOW + 1))


def test_a_disk_that_stalls_often_ends_up_in_the_thread_and_a_rare_spike_stays_on_the_loop() -> None:
    often = ([FAST] * 4 + [SLOW]) * 40
    inline = run_writes(often)
    stalls_on_loop = [i for i, (d, on_loop) in enumerate(zip(often, inline)) if d == SLOW and on_loop]
    assert len(stalls_on_loop) <= LEAVE_AFTER * (1 + math.log2(len(often) / WINDOW)), stalls_on_loop  # of 40 stalls
    rare = [FAST] * 10 + [SLOW] + [FAST] * 200 + [SLOW] + [FAST] * 10
    assert all(run_writes(rare)), "a spike now and then keeps every write on the loop"
    spells = [FAST] * 10 + [SLOW, FAST, SLOW] + [FAST] * 200 + [SLOW, SLOW] + [FAST] * 10
    inline = run_writes(spells)
    assert inline[:13] == [True] * 13 and inline[13 : 13 + 2 * WINDOW] == [False] * 2 * WINDOW
    assert all(inline[13 + 2 * WINDOW : 215])
    assert inline[215 : 216 + 2 * WINDOW] == [False] * 2 * WINDOW + [True], "forgiven: back after 2 windows, not 4"


def test_the_writes_are_counted_where_they_ran_and_the_loops_time_in_them_summed() -> None:
    """What `/metrics` shows of the journal: writes on the loop and in the thread, the slow ones, the loop's seconds."""
    clock = FakeClock()
    writes = InlineIO(LIMIT, WINDOW, clock)
    durations = [FAST] * 5 + [SLOW, FAST, SLOW] + [FAST] * (2 * WINDOW + 2)

    async def main() -> None:
        for seconds in durations:
            def work(seconds: float = seconds) -> None:
                clock.now += seconds

            await writes.run(work)

    anyio.run(main)
    assert (writes.on_loop, writes.in_thread, writes.slow) == (len(durations) - 2 * WINDOW, 2 * WINDOW, 2)
    assert writes.loop_s == pytest.approx(2 * SLOW + (len(durations) - 2 * WINDOW - 2) * FAST)


class RecordingStorage(MemoryStorage):
    """Memory that says it blocks (as a file does) and notes which thread each fsync ran on."""

    blocking = True

    def __init__(self, clock: FakeClock, durations: list[float]) -> None:
        super().__init__()
        self.threads: list[int] = []
        self._clock = clock
        self.durations = durations

    def sync(self) -> None:
        self.threads.append(threading.get_ident())
        self._clock.now += self.durations.pop(0) if self.durations else FAST


@pytest.mark.anyio
async def test_the_ledger_fsyncs_on_the_loop_while_its_journal_is_fast_and_answers_after_the_fsync_either_way() -> None:
    clock = FakeClock()
    storage = RecordingStorage(clock, [])
    made: list[LedgerActor] = []

    def ledger_actor() -> LedgerActor:
        actor = LedgerActor(LedgerSettings(limit_nd=10**9), storage_factory=lambda: storage)
        actor._writes = InlineIO(LIMIT, WINDOW, clock)  # noqa: SLF001 - the durations come from the fake clock
        made.append(actor)
        return actor

    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", ledger_actor))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        del storage.threads[:]  # recovery's own writes at start
        storage.durations.extend([FAST] * 6 + [SLOW, FAST, SLOW])
        loop_thread = threading.get_ident()
        for i in range(20):
            reply = await ledger.reserve(f"r{i}", "q", "t", "m", 100)
            assert reply.granted and storage.threads, "answered only once its record was synced"
        supervisor.stop()
    on_loop = [t == loop_thread for t in storage.threads]
    assert all(on_loop[:9])
    assert not any(on_loop[9:9 + 2 * WINDOW]), "after the second slow fsync of a few (the 9th) the next go to the thread"
    assert all(on_loop[9 + 2 * WINDOW:]), "then a probe, fast, and back on the loop"
    assert len(made) == 1 and len(storage.threads) >= 20


def test_the_inline_limit_is_a_budget_setting(tmp_path: Path) -> None:
    shipped = Path(__file__).parent.parent / "configs" / "simulated.yaml"
    assert load_config(shipped, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.002
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {shipped}\nllm_routing:\n  budget:\n    journal_inline_ms: 0\n")
    assert load_config(config, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.0

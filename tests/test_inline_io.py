"""Journal writes on the event loop only while the disk proves fast, in a worker thread otherwise."""

from __future__ import annotations

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
from actors.runtime.inline_io import InlineIO
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


def test_a_fast_disk_is_written_inline_once_a_window_of_writes_proved_it() -> None:
    assert run_writes([FAST] * 8) == [False] * WINDOW + [True] * (8 - WINDOW)
    assert run_writes([FAST] * 8, limit=0) == [False] * 8, "a limit of 0 keeps every write in the thread"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_a_write_runs_inline_only_after_a_streak_of_fast_ones_that_doubles_with_each_slow_inline_one(
        slow: list[bool]) -> None:
    inline = run_writes([SLOW if s else FAST for s in slow])
    needed, streak = WINDOW, 0
    for was_slow, was_inline in zip(slow, inline):
        assert was_inline == (streak >= needed)
        if was_slow:
            streak = 0
            if was_inline:
                needed *= 2
        else:
            streak += 1


def test_a_disk_that_stalls_now_and_then_ends_up_in_the_thread() -> None:
    """Every write after a stall waits for a longer fast streak: the stalls that land on the loop grow rarer."""
    pattern = ([FAST] * 20 + [SLOW]) * 12
    inline = run_writes(pattern)
    stalls_on_loop = [i for i, (d, on_loop) in enumerate(zip(pattern, inline)) if d == SLOW and on_loop]
    gaps = [b - a for a, b in zip(stalls_on_loop, stalls_on_loop[1:])]
    assert len(stalls_on_loop) <= 3 and gaps == sorted(gaps)
    assert not any(inline[-30:]), "the fast streak needed now outlasts the disk's"


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
        storage.durations.extend([FAST] * 6 + [SLOW])
        loop_thread = threading.get_ident()
        for i in range(12):
            reply = await ledger.reserve(f"r{i}", "q", "t", "m", 100)
            assert reply.granted and storage.threads, "answered only once its record was synced"
        supervisor.stop()
    on_loop = [t == loop_thread for t in storage.threads]
    assert on_loop[:WINDOW] == [False] * WINDOW and all(on_loop[WINDOW:7])
    assert not any(on_loop[7:7 + WINDOW]), "after the slow fsync (the 7th) the next ones go to the thread"
    assert len(made) == 1 and len(storage.threads) >= 12


def test_the_inline_limit_is_a_budget_setting(tmp_path: Path) -> None:
    shipped = Path(__file__).parent.parent / "configs" / "simulated.yaml"
    assert load_config(shipped, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.002
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {shipped}\nllm_routing:\n  budget:\n    journal_inline_ms: 0\n")
    assert load_config(config, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.0

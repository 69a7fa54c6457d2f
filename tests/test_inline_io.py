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


def test_a_fast_disk_is_written_inline_and_a_limit_of_0_never() -> None:
    assert run_writes([FAST] * 8) == [True] * 8
    assert run_writes([FAST] * 8, limit=0) == [False] * 8


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_the_loop_is_left_after_a_slow_write_for_at_least_a_window_of_writes(slow: list[bool]) -> None:
    inline = run_writes([SLOW if s else FAST for s in slow])
    assert inline[0], "tried on the loop first"
    for i in range(len(slow) - 1):
        if inline[i]:
            assert inline[i + 1] == (not slow[i]), "a fast write on the loop keeps the next there; a slow one not"
            if slow[i]:
                assert not any(inline[i + 1 : i + 1 + WINDOW]), "then a window of writes in the thread"
    stalls = sum(1 for s, on_loop in zip(slow, inline) if s and on_loop)
    assert stalls <= 1 + len(slow) // (WINDOW + 1)


def test_a_disk_that_stalls_often_ends_up_in_the_thread_and_a_rare_spike_is_forgiven() -> None:
    often = ([FAST] * 4 + [SLOW]) * 40
    inline = run_writes(often)
    stalls_on_loop = [i for i, (d, on_loop) in enumerate(zip(often, inline)) if d == SLOW and on_loop]
    assert len(stalls_on_loop) <= 1 + math.log2(len(often) / WINDOW), stalls_on_loop  # of 40 stalls
    rare = [FAST] * 10 + [SLOW] + [FAST] * 200 + [SLOW] + [FAST] * 10
    inline = run_writes(rare)
    assert inline[11 : 11 + 2 * WINDOW] == [False] * 2 * WINDOW and all(inline[11 + 2 * WINDOW : 212])
    assert inline[212 : 213 + 2 * WINDOW] == [False] * 2 * WINDOW + [True], "forgiven: back after 2 windows, not 4"


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
        for i in range(20):
            reply = await ledger.reserve(f"r{i}", "q", "t", "m", 100)
            assert reply.granted and storage.threads, "answered only once its record was synced"
        supervisor.stop()
    on_loop = [t == loop_thread for t in storage.threads]
    assert all(on_loop[:7])
    assert not any(on_loop[7:7 + 2 * WINDOW]), "after the slow fsync (the 7th) the next ones go to the thread"
    assert all(on_loop[7 + 2 * WINDOW:]), "then a probe, fast, and back on the loop"
    assert len(made) == 1 and len(storage.threads) >= 20


def test_the_inline_limit_is_a_budget_setting(tmp_path: Path) -> None:
    shipped = Path(__file__).parent.parent / "configs" / "simulated.yaml"
    assert load_config(shipped, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.002
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {shipped}\nllm_routing:\n  budget:\n    journal_inline_ms: 0\n")
    assert load_config(config, environ={}, state_dir=tmp_path).engine.ledger.inline_write_s == 0.0

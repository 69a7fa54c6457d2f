"""The journal: recovery after SIGKILL and power cuts, corrupt files, locks, paths, modes."""

from __future__ import annotations

import logging
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import ActorStopped, JournalError
from actors.ledger.actor import LedgerActor, open_core, open_read_only
from actors.ledger.client import LedgerClient
from actors.ledger.journal import HEADER, FileStorage, MemoryStorage, commit_frame, frame, recover
from actors.ledger.messages import JournalEntry, Settle
from actors.ledger.settings import LedgerSettings
from actors.runtime.supervisor import Supervisor
from tests.test_fileio import record_syncs

ROOT = Path(__file__).resolve().parent.parent


def settings_in(directory: Path, **changes: object) -> LedgerSettings:
    return LedgerSettings(
        limit_nd=10**9, journal_path=str(directory / "journal"), state_dir=str(directory), **changes  # type: ignore[arg-type]
    )


def entries(n: int) -> list[JournalEntry]:
    out = []
    for i in range(n):
        out.append(JournalEntry(2 * i + 1, "reserve", f"r{i}", 1.7e9, 100, "req", "t", "m"))
        out.append(JournalEntry(2 * i + 2, "settle", f"r{i}", 1.7e9, 60))
    return out


def committed(entry: JournalEntry) -> bytes:
    """One entry as a commit of its own, as the ledger writes a commit that carries one record."""
    return commit_frame(frame(entry))


def write_journal(path: Path, records: list[JournalEntry]) -> bytes:
    data = HEADER + b"".join(map(committed, records))
    path.write_bytes(data)
    return data


def test_sigkill_at_random_instants_never_loses_an_acknowledged_operation(tmp_path: Path) -> None:
    rng = random.Random(7)
    acked_reserved: dict[str, int] = {}
    acked_settled: dict[str, int] = {}
    acked_released: set[str] = set()
    settings = settings_in(tmp_path)
    for kill in range(20):
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "ledger_child.py"), str(tmp_path), str(kill)],
            stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"READY"
        time.sleep(rng.uniform(0.02, 0.25))
        child.send_signal(signal.SIGKILL)
        output, _ = child.communicate()
        for line in output.decode().splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            if parts[0] == "R" and len(parts) == 3:
                acked_reserved[parts[1]] = int(parts[2])
            elif parts[0] == "S" and len(parts) == 3:
                acked_settled[parts[1]] = int(parts[2])
            elif parts[0] == "X":
                acked_released.add(parts[1])
        storage = FileStorage(settings.journal_path, settings.state_dir)  # type: ignore[arg-type]
        try:
            core = open_core(settings, storage)
        finally:
            storage.close()
        status = core.status()
        assert status.settled_nd + status.reserved_nd <= settings.limit_nd
        known = set(core.reservations) | set(core.closed)
        assert set(acked_reserved) <= known
        for rid, amount in acked_settled.items():
            assert core.settled_by_reservation[rid] == amount
        for rid in acked_released:
            assert core.closed[rid] == "released"
    assert len(acked_settled) > 100, "the children made real progress before being killed"


def test_a_power_cut_loses_only_what_was_never_synced() -> None:
    storage = MemoryStorage()
    settings = LedgerSettings(limit_nd=10**9)
    core = open_core(settings, storage)
    for entry in entries(3):
        core.apply(entry)
        storage.append(committed(entry))
    storage.sync()
    extra = JournalEntry(7, "reserve", "late", 1.7e9, 500, "req", "t", "m")
    storage.append(committed(extra))
    storage.power_cut()
    recovered = open_core(settings, storage)
    assert recovered.status().settled_nd == 180
    assert "late" not in recovered.reservations


def test_torn_last_record_is_cut_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = write_journal(tmp_path / "journal", entries(2))
    (tmp_path / "journal").write_bytes(data[:-5])
    storage = FileStorage(tmp_path / "journal", tmp_path)
    with caplog.at_level(logging.WARNING):
        core = open_core(LedgerSettings(limit_nd=10**9), storage)
    storage.close()
    assert "cut" in caplog.text and "unacknowledged tail" in caplog.text
    assert core.status().settled_nd == 60 and "r1" in core.reservations
    assert len((tmp_path / "journal").read_bytes()) < len(data) - 5 + 1


def test_flipped_bytes_in_the_middle_refuse_to_start(tmp_path: Path) -> None:
    data = bytearray(write_journal(tmp_path / "journal", entries(4)))
    data[len(HEADER) + 20] ^= 0xFF
    (tmp_path / "journal").write_bytes(bytes(data))
    storage = FileStorage(tmp_path / "journal", tmp_path)
    with pytest.raises(JournalError, match=r"corrupt commit at byte \d+ .* intact commits after it"):
        open_core(LedgerSettings(limit_nd=10**9), storage)
    storage.close()


def test_an_empty_file_is_a_new_journal(tmp_path: Path) -> None:
    (tmp_path / "journal").write_bytes(b"")
    storage = FileStorage(tmp_path / "journal", tmp_path)
    core = open_core(LedgerSettings(limit_nd=10**9), storage)
    storage.close()
    assert core.status().operations == 0
    data = (tmp_path / "journal").read_bytes()
    assert data[: len(HEADER)] == HEADER and not data[len(HEADER) :].strip(b"\x00"), "a header, then zeros"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"NOTALEDGER-------", "bad magic"), (b"ORCHLEDG\x00\x09" + b"\x00" * 6, "format version 9")],
)
def test_wrong_magic_or_version_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "journal").write_bytes(content)
    storage = FileStorage(tmp_path / "journal", tmp_path)
    with pytest.raises(JournalError, match=message):
        open_core(LedgerSettings(limit_nd=10**9), storage)
    storage.close()


def test_a_second_process_cannot_open_the_same_journal(tmp_path: Path) -> None:
    first = FileStorage(tmp_path / "journal", tmp_path)
    script = (
        "import sys; from actors.ledger.journal import FileStorage\n"
        f"FileStorage({str(tmp_path / 'journal')!r}, {str(tmp_path)!r})"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    first.close()
    assert done.returncode != 0
    assert b"in use by another orchestrator process" in done.stderr


def test_journal_outside_the_state_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="outside the state directory"):
        FileStorage(tmp_path / "elsewhere" / ".." / ".." / "journal", tmp_path / "state")


def test_files_are_owner_only(tmp_path: Path) -> None:
    """The directory, the journal, its lock, and what compaction writes (the snapshot, the journal anew)."""
    storage = FileStorage(tmp_path / "ledger" / "journal", tmp_path)
    open_core(LedgerSettings(limit_nd=1), storage)
    storage.write_snapshot(b"state")
    storage.replace(HEADER)
    storage.close()
    assert stat.S_IMODE((tmp_path / "ledger").stat().st_mode) == 0o700
    for name in ("journal", "journal.lock", "journal.snapshot"):
        assert stat.S_IMODE((tmp_path / "ledger" / name).stat().st_mode) == 0o600, name


def test_a_second_opener_is_told_which_process_holds_the_journal(tmp_path: Path) -> None:
    (tmp_path / "journal.lock").write_text("4194303999")  # a longer pid, left by a process long gone
    first = FileStorage(tmp_path / "journal", tmp_path)
    try:
        with pytest.raises(JournalError, match=rf"in use by another orchestrator process \(pid {os.getpid()}\)"):
            FileStorage(tmp_path / "journal", tmp_path)
    finally:
        first.close()


def test_compaction_syncs_each_file_before_it_replaces_the_old_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A power cut at any instant leaves the old snapshot or journal or the new one whole, never an empty file under
    the name: the new file's bytes reach the disk before the rename, and the rename itself after it."""
    events = record_syncs(monkeypatch)
    storage = FileStorage(tmp_path / "journal", tmp_path)
    storage.append(HEADER)
    for write, name in ((lambda: storage.write_snapshot(b"state"), "journal.snapshot"),
                        (lambda: storage.replace(HEADER), "journal")):
        events.clear()
        write()
        assert events == [("fsync", str(tmp_path / f"{name}.{os.getpid()}.tmp")), ("replace", str(tmp_path / name)),
                          ("fsync", str(tmp_path))], name
    events.clear()
    storage.truncate(len(HEADER))
    assert events == [("fsync", str(tmp_path / "journal"))], "a torn tail cut at recovery stays cut"
    storage.close()


def reserve_and_settle(settings: LedgerSettings, count: int) -> None:
    """`count` reservations of 100, each settled at 40, through a supervised ledger actor on `settings`' journal."""

    async def run() -> None:
        supervisor = Supervisor(CODEC)
        ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings)))
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            for i in range(count):
                await ledger.reserve(f"r{i}", "q", "t", "m", 100)
                await ledger.settle(f"r{i}", 40)
            supervisor.stop()

    anyio.run(run)


def test_compaction_keeps_the_state_and_replays_nothing_twice(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, snapshot_every=10)
    reserve_and_settle(settings, 25)
    storage = FileStorage(settings.journal_path, settings.state_dir)  # type: ignore[arg-type]
    recovered = recover(storage, "journal")
    core = open_core(settings, storage)
    storage.close()
    assert recovered.snapshot is not None and recovered.snapshot.operations >= 40
    assert len(recovered.entries) < 10
    ten = sum(len(commit_frame(frame(entry))) for entry in entries(10))
    assert len(Path(settings.journal_path).read_bytes().rstrip(b"\x00")) < len(HEADER) + ten, (  # type: ignore[arg-type]
        "each compaction starts the journal anew: it holds only what came after the snapshot")
    assert core.status().settled_nd == 25 * 40 and core.status().outstanding == 0


@pytest.mark.anyio
@pytest.mark.parametrize("group_commit", [True, False])
async def test_the_actor_answers_only_after_fsync_and_never_overspends(
    anyio_backend: str, tmp_path: Path, group_commit: bool
) -> None:
    storage = MemoryStorage()
    settings = LedgerSettings(limit_nd=50_000, journal_path="memory", group_commit=group_commit)
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings, storage_factory=lambda: storage)))
    granted = []

    async def client(i: int) -> None:
        reply = await ledger.reserve(f"r{i}", "q", "t", "m", 100)
        if reply.granted:
            assert f"r{i}".encode() in storage.durable, "answered before the record was synced"
            granted.append(i)
            await ledger.settle(f"r{i}", 100)

    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        with anyio.fail_after(60):  # a ledger that never answers fails the test instead of hanging it
            async with anyio.create_task_group() as clients:
                for i in range(1000):
                    clients.start_soon(client, i)
            status = await ledger.status()
        supervisor.stop()
    assert len(granted) == 500 and status.settled_nd == 50_000 and status.outstanding == 0
    if group_commit:
        assert storage.syncs < 1000, "group commit batches fsyncs"


def test_a_damaged_length_with_intact_records_after_it_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    data = bytearray(write_journal(tmp_path / "journal", entries(40)))
    data[len(HEADER) : len(HEADER) + 4] = (len(data) * 4).to_bytes(4, "big")
    (tmp_path / "journal").write_bytes(bytes(data))
    for read_only in (True, False):
        storage = FileStorage(tmp_path / "journal", tmp_path, read_only=read_only)
        with pytest.raises(JournalError, match=r"at byte 16 .*runs past the end.* intact commits after it"):
            open_core(LedgerSettings(limit_nd=10**9), storage, read_only=read_only)
        storage.close()
    assert (tmp_path / "journal").read_bytes() == bytes(data), "nothing was cut"


def test_read_only_opening_changes_no_byte_even_with_a_torn_tail(tmp_path: Path) -> None:
    data = write_journal(tmp_path / "journal", entries(3))[:-5]
    (tmp_path / "journal").write_bytes(data)
    settings = settings_in(tmp_path)
    core = open_read_only(settings)
    assert core.status().settled_nd == 120, "the torn last record is ignored, not cut"
    assert (tmp_path / "journal").read_bytes() == data
    assert not (tmp_path / "journal.lock").exists(), "a reader takes no lock and creates nothing"
    with pytest.raises(JournalError, match="opened read-only"):
        FileStorage(tmp_path / "journal", tmp_path, read_only=True).append(b"x")


def test_budget_and_replay_commands_leave_the_journal_byte_identical(tmp_path: Path) -> None:
    from orchestrator.cli.main import main

    state = tmp_path / "state"
    assert main(["run", "--tasks", "3", "--state-dir", str(state)]) == 0
    journal = state / "ledger" / "journal"
    before = journal.read_bytes()
    torn = before + b"\x00\x00\x01\x00partial"
    journal.write_bytes(torn)
    assert main(["budget", "--state-dir", str(state), "--json"]) == 0
    main(["replay", str(state / "telemetry"), "--state-dir", str(state)])
    assert journal.read_bytes() == torn


def test_sync_flushes_the_journal_files_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group commit flushes the journal's data and length: fdatasync where the platform has it, fsync where not."""
    from actors.ledger import journal as journal_module

    synced: list[tuple[str, int]] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)
        monkeypatch.setattr(journal_module.os, name, lambda fd, name=name, real=real: (synced.append((name, fd)), real(fd)))
    storage = FileStorage(tmp_path / "journal", tmp_path)
    fd = storage._fd  # noqa: SLF001 - the descriptor whose data must reach the disk
    storage.append(HEADER)
    synced.clear()
    storage.sync()
    monkeypatch.delattr(journal_module.os, "fdatasync")
    storage.sync()
    storage.close()
    assert synced == [("fdatasync", fd), ("fsync", fd)]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actors.ledger import journal as journal_module

    real_write, real_pwrite = os.write, os.pwrite
    monkeypatch.setattr(journal_module.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    monkeypatch.setattr(journal_module.os, "pwrite", lambda fd, data, at: real_pwrite(fd, bytes(data[:3]), at))
    storage = FileStorage(tmp_path / "journal", tmp_path)
    records = HEADER + b"".join(map(committed, entries(5)))
    storage.append(records)
    storage.write_snapshot(b"0123456789")
    storage.close()
    assert (tmp_path / "journal").read_bytes().rstrip(b"\x00") == records.rstrip(b"\x00")
    assert (tmp_path / "journal.snapshot").read_bytes() == b"0123456789"


def test_a_full_disk_during_compaction_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actors.ledger import journal as journal_module

    settings = settings_in(tmp_path, snapshot_every=5)
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(journal_module.os, "write", full_disk)

    async def run() -> None:
        supervisor = Supervisor(CODEC)
        ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings)))
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            for i in range(12):
                await ledger.reserve(f"r{i}", "q", "t", "m", 100)
                await ledger.settle(f"r{i}", 40)
            assert supervisor.health()["ledger"]["restarts"] == 0
            supervisor.stop()

    anyio.run(run)
    assert not (tmp_path / "journal.snapshot").exists() and not list(tmp_path.glob("*.tmp"))
    monkeypatch.setattr(journal_module.os, "write", real_write)
    assert open_read_only(settings).status().settled_nd == 12 * 40


class OneWriterStorage(MemoryStorage):
    """Notices two appends running at once (two writers racing on the file)."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.overlaps = 0

    def append(self, data: bytes) -> None:
        self.active += 1
        self.overlaps += self.active > 1
        time.sleep(0.002)
        super().append(data)
        self.active -= 1


def test_group_commit_and_immediate_flushes_never_write_at_once(tmp_path: Path) -> None:
    storage = OneWriterStorage()
    settings = LedgerSettings(limit_nd=10**9)

    async def run() -> None:
        supervisor = Supervisor(CODEC)
        ledger = LedgerClient(supervisor.add("ledger", lambda: ThreadedLedger(settings, storage_factory=lambda: storage)))
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            async with anyio.create_task_group() as clients:
                for i in range(60):
                    clients.start_soon(ledger.reserve, f"r{i}", "q", "t", "m", 100)
                    if i % 10 == 0:
                        clients.start_soon(ledger.reconcile, True)
            supervisor.stop()

    anyio.run(run)
    assert storage.overlaps == 0
    recovered = open_core(settings, storage)
    assert recovered.seq == max(e.seq for e in journal_entries(storage))
    assert [e.seq for e in journal_entries(storage)] == sorted(e.seq for e in journal_entries(storage))


class ThreadedLedger(LedgerActor):
    """Writes through worker threads even to memory, as it does to a file, so writers can race."""

    async def _io(self, work):  # type: ignore[no-untyped-def, override]
        return await anyio.to_thread.run_sync(work)


def journal_entries(storage: MemoryStorage) -> list[JournalEntry]:
    from actors.ledger.journal import recover

    return recover(storage, "memory", read_only=True).entries


def test_closed_reservations_are_remembered_up_to_a_bound() -> None:
    from actors.ledger.core import LedgerCore

    core = LedgerCore(LedgerSettings(limit_nd=10**9, closed_memory=10))
    for i in range(100):
        _, entry = core.reserve(f"r{i}", "q", "t", "m", 5)
        assert entry is not None
        core.apply(entry)
        settled = core.settle(f"r{i}", 5)
        assert settled is not None
        core.apply(settled)
    assert len(core.closed) == 10 and len(core.settled_by_reservation) == 10
    assert "r99" in core.closed and "r0" not in core.closed
    assert core.status().settled_nd == 500


def group_committed_ledger(storage: MemoryStorage) -> tuple[Supervisor, LedgerClient, LedgerSettings]:
    """A group-committing ledger whose blocking writes all go to the worker thread (a gated disk holds them there)."""
    settings = LedgerSettings(limit_nd=10**6, journal_path="memory", group_commit=True, inline_write_s=0.0)
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings, storage_factory=lambda: storage)))
    return supervisor, ledger, settings


def durable_copy(storage: MemoryStorage) -> MemoryStorage:
    """What a power cut would leave of `storage`: its synced bytes only."""
    copy = MemoryStorage()
    copy.durable = bytearray(storage.durable)
    return copy


@pytest.mark.trio
async def test_a_told_settle_rides_on_the_next_asks_fsync_or_syncs_within_the_linger(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One fsync per request: a settle nobody waits for joins the next reserve's sync, or its own after the linger."""
    storage = MemoryStorage()
    supervisor, ledger, settings = group_committed_ledger(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await ledger.reserve("r1", "q", "t", "m", 100)
        synced = storage.syncs
        await ledger.tell(Settle("r1", 60))
        await trio.sleep(LedgerActor.TOLD_LINGER_S / 2)
        lingering = storage.syncs
        await ledger.reserve("r2", "q", "t", "m", 100)
        carried = storage.syncs
        settled_on_disk = open_core(settings, durable_copy(storage)).status().settled_nd
        await ledger.tell(Settle("r2", 40))
        await trio.sleep(LedgerActor.TOLD_LINGER_S * 2)
        alone = storage.syncs
        supervisor.stop()
    assert lingering == synced, "a told settle does not fsync on its own at once"
    assert carried == synced + 1 and settled_on_disk == 60, "the reserve's one fsync carried the settle"
    assert alone == carried + 1 and open_core(settings, storage).status().settled_nd == 100


class GatedSyncStorage(MemoryStorage):
    """A disk whose syncs wait until the test opens the gate; blocking, so they run in a worker thread."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def sync(self) -> None:
        assert self.gate.wait(timeout=10), "the test never opened the gate"
        super().sync()


async def asks_behind_a_closed_gate(
    storage: GatedSyncStorage,
    supervisor: Supervisor,
    ask: Callable[[int], Awaitable[object]],
    count: int,
    when_all_wait: Callable[[], None] = lambda: None,
) -> int:
    """Run the ledger, start `count` asks with the disk's gate closed, open it once every task waits.

    Returns how many syncs the asks took.
    """
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            synced = storage.syncs
            storage.gate.clear()
            async with trio.open_nursery() as askers:
                for i in range(count):
                    askers.start_soon(ask, i)
                await trio.testing.wait_all_tasks_blocked()
                when_all_wait()
                storage.gate.set()
            supervisor.stop()
    return storage.syncs - synced


@pytest.mark.trio
async def test_reserves_asked_together_share_one_fsync_and_are_answered_only_after_it() -> None:
    """The ledger writes a burst of asks itself, once it has served them all; nobody hears before the sync."""
    storage = GatedSyncStorage()
    supervisor, ledger, settings = group_committed_ledger(storage)
    answered: list[int] = []
    answered_before_the_sync: list[int] = []

    async def reserve(i: int) -> None:
        await ledger.reserve(f"r{i}", "q", "t", "m", 100)
        answered.append(open_core(settings, durable_copy(storage)).status().reserved_nd)

    syncs = await asks_behind_a_closed_gate(
        storage, supervisor, reserve, 10, when_all_wait=lambda: answered_before_the_sync.extend(answered)
    )
    assert answered_before_the_sync == [], "nobody hears before the sync"
    assert syncs == 1, "ten reserves asked together, one fsync"
    assert answered == [1000] * 10, "each was answered with all ten on disk"


@pytest.mark.trio
async def test_in_a_flood_batches_grow_past_a_burst_while_the_ledger_goes_on_serving() -> None:
    """While a sync is under way the ledger keeps serving, and what it served goes in the next sync."""
    from actors.runtime.actor import BURST

    storage = GatedSyncStorage()
    supervisor, ledger, settings = group_committed_ledger(storage)
    asks = 10 * BURST

    async def reserve(i: int) -> None:
        await ledger.reserve(f"r{i}", "q", "t", "m", 1)

    syncs = await asks_behind_a_closed_gate(storage, supervisor, reserve, asks)
    assert open_core(settings, storage).status().reserved_nd == asks
    assert syncs <= 2, "the first sync and one for the rest, not one per BURST"


class DiskFullOnce(MemoryStorage):
    """A disk that fails one sync (the third) as a full disk would."""

    def sync(self) -> None:
        if self.syncs == 2 and not getattr(self, "failed", False):
            self.failed = True
            raise JournalError("journal: cannot write (No space left on device)")
        super().sync()


@pytest.mark.trio
async def test_a_failed_write_fails_that_bursts_askers_with_the_cause_and_the_ledger_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = DiskFullOnce()
    supervisor, ledger, settings = group_committed_ledger(storage)
    failures: list[str] = []

    async def reserve(i: int) -> None:
        try:
            await ledger.reserve(f"r{i}", "q", "t", "m", 100)
        except ActorStopped as exc:
            failures.append(str(exc))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await ledger.reserve("before", "q", "t", "m", 100)
            async with trio.open_nursery() as askers:
                for i in range(5):
                    askers.start_soon(reserve, i)
            await trio.sleep(10)
            after = await ledger.reserve("after", "q", "t", "m", 100)
            status = await ledger.status()
            supervisor.stop()
    assert len(failures) == 5 and all("No space left on device" in f for f in failures)
    assert after.granted
    assert status.reserved_nd == 7 * 100, "the failed burst's reservations are recovered as held, never forgotten"

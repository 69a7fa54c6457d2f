"""The ledger actor: the one place money changes, one message at a time, durably.

Each message is applied to the core as it arrives. A change is answered only after
its journal record is on disk: with group commit, once the ledger has served every
queued message, their records are written and fsynced together and then answered
(`after_burst`), so durability costs one fsync per burst, not per request. Messages
that arrive during the fsync wait in the inbox for the next burst. The write happens
in the ledger's own task: handed to a task of its own, a reserve waited for that
task's turn behind everything else ready, which with 16 requests arriving together
was most of the latency the orchestrator added (docs/BENCHMARKS.md). In a flood (a
BURST served and more waiting) the flusher task writes instead, while the ledger
goes on appending, so batches grow with the load.
A denial changes nothing and is answered at once. The write and its fsync run on the
event loop while the disk proves fast (each write there under `inline_write_s`, 2 ms by
default; slower ones, two among the last 16, send the next ones to a worker thread for a while,
`actors/runtime/inline_io.py`): handed to a
thread, a reservation's fsync of 0.14 ms cost it 16 ms of waiting for a busy loop to
take the answer back, at 100 requests in flight (docs/BENCHMARKS.md).

Failure isolation: an operation the core refuses (a negative amount, an unknown or
repeated id) is a `LedgerError` for that asker alone. What crashes the actor is
only what breaks its own state: an entry the core cannot apply, or a journal write
that failed (memory would then be ahead of the disk). A restart rebuilds the state
from storage, and every ask whose record was not yet durable fails with the cause,
so nothing acknowledged is lost and nothing unacknowledged is assumed.

What is told rather than asked (settle, release, hold: nobody waits for them) is
not worth an fsync of its own: it waits up to TOLD_LINGER_S for the next ask's
group commit to carry it, so one request costs one fsync, not two (the reserve's,
and the previous request's settle right before it). Until its record is on disk a
closed reservation is still open in the journal, counted as spent: a crash then
leaves it held for `budget reconcile`, never spends money twice (docs/LEDGER.md).

One writer: every write to storage happens under `_write_lock`, and whoever holds
it writes everything appended so far, in order. So the group-commit flusher and a
command that flushes at once (reconcile, reset, stop) can never interleave records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import attrs

from actors.errors import JournalError, LedgerError
from actors.ledger import journal
from actors.ledger.admission import AdmissionQueue, Waiter, refusal, reply_to
from actors.ledger.core import Applied, Decision, LedgerCore, restore, snapshot_of
from actors.ledger.messages import (
    BudgetStatus,
    Hold,
    JournalEntry,
    LedgerAck,
    Reconcile,
    Release,
    Reserve,
    ReserveReply,
    ResetLedger,
    Settle,
    StatusQuery,
)
from actors.ledger.settings import LedgerSettings
from actors.runtime.actor import Actor, BrokenInvariant
from actors.runtime.clock import current_time
from actors.runtime.doorbell import Doorbell
from actors.runtime.inline_io import InlineIO
from actors.runtime.signal import Signal
from actors.telemetry.events import BudgetAlert, LedgerOverrun

log = logging.getLogger(__name__)

_T = TypeVar("_T")
EventSink = Callable[[object], None]
StorageFactory = Callable[[], journal.Storage]


def open_core(
    settings: LedgerSettings, storage: journal.Storage | None, where: str = "journal", *, read_only: bool = False
) -> LedgerCore:
    """Rebuild the ledger from storage; outstanding reservations become unreconciled."""
    core = LedgerCore(settings)
    if storage is None:
        return core
    recovered = journal.recover(storage, where, read_only=read_only)
    if recovered.snapshot is not None:
        restore(core, recovered.snapshot)
    for entry in recovered.entries:
        core.apply(entry)
    outstanding = core.mark_outstanding_unreconciled()
    if outstanding and not read_only:
        log.warning(
            "%s: %d reservations were outstanding when the ledger stopped; they count as spent "
            "until `orchestrator budget reconcile`",
            where,
            outstanding,
        )
    return core


def open_read_only(settings: LedgerSettings) -> LedgerCore:
    """The ledger as its journal holds it, for commands that only look: nothing is written or locked."""
    if settings.journal_path is None:
        return LedgerCore(settings)
    storage = journal.FileStorage(settings.journal_path, settings.state_dir, read_only=True)
    return open_core(settings, storage, settings.journal_path, read_only=True)


def file_storage_factory(settings: LedgerSettings) -> StorageFactory | None:
    """Storage for a journaled ledger, or None when the settings name no journal."""
    path = settings.journal_path
    if path is None:
        return None
    return lambda: journal.FileStorage(path, settings.state_dir)


class LedgerActor(Actor):
    name = "ledger"
    TOLD_LINGER_S = 0.05

    def __init__(
        self,
        settings: LedgerSettings,
        on_event: EventSink | None = None,
        alert_callback: Callable[[BudgetAlert], None] | None = None,
        storage_factory: StorageFactory | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._alert_callback = alert_callback
        self._storage_factory = storage_factory or file_storage_factory(settings)
        self._storage: journal.Storage | None = None
        self.core = LedgerCore(settings)
        self._batch: list[bytes] = []
        self._waiting: list[tuple[int, object]] = []
        self._doorbell = Doorbell()
        self._asked = False
        """Whether a change someone waits on is not yet written (`after_burst` writes it)."""
        self._write_lock = anyio.Lock()
        self._writes = InlineIO(settings.inline_write_s)
        self._since_snapshot = 0
        self.queue = AdmissionQueue()
        self._queue_changed = Signal()

    def __repr__(self) -> str:
        status = self.core.status()
        return (
            f"<LedgerActor settled={status.settled_nd} reserved={status.reserved_nd} "
            f"outstanding={status.outstanding} pending_records={len(self._batch)}>"
        )

    async def on_start(self) -> None:
        self.tasks.start_soon(self._expirer)
        if self._storage_factory is None:
            return
        where = self.settings.journal_path or "ledger storage"
        self._storage = storage = self._storage_factory()
        self.core = await self._io(lambda: open_core(self.settings, storage, where))
        if self.settings.group_commit:
            self.tasks.start_soon(self._flusher)

    async def on_stop(self) -> None:
        for waiter in self.queue.expire(float("inf")):
            self.inbox.reply(waiter.corr, self._refusal(waiter, current_time(), "the ledger stopped"))
        await self._close_storage()

    async def _close_storage(self) -> None:
        storage, self._storage = self._storage, None
        if storage is None:
            return
        try:
            await self._write(storage)
        finally:
            storage.close()

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, Reserve):
            return await self._reserve(msg, corr)
        if isinstance(msg, Settle):
            entry = self.core.settle(msg.reservation_id, msg.actual_nd, msg.input_tokens, msg.output_tokens)
        elif isinstance(msg, Release):
            if msg.reservation_id in self.queue:
                return self._withdraw(msg.reservation_id)
            entry = self.core.release(msg.reservation_id)
        elif isinstance(msg, Hold):
            entry = self.core.hold(msg.reservation_id)
        elif isinstance(msg, StatusQuery):
            return self.status()
        elif isinstance(msg, Reconcile):
            for entry in self.core.reconcile(msg.release):
                self._append(entry)
            await self._flush_now()
            await self._admit()
            return self.status()
        elif isinstance(msg, ResetLedger):
            entry = self.core.reset()
            self._apply(entry)
            self._append(entry)
            await self._flush_now()
            await self._admit()
            return self.status()
        else:
            raise LedgerError(f"the ledger does not handle {type(msg).__name__}")
        if entry is None:
            return LedgerAck(msg.reservation_id, "duplicate")
        answer = await self._commit(entry, corr, None)
        if self.queue:
            await self._admit()
        return answer

    def status(self) -> BudgetStatus:
        writes = self._writes
        return attrs.evolve(self.queue.stats().onto(self.core.status()), journal_writes_on_loop=writes.on_loop,
                            journal_writes_in_thread=writes.in_thread, journal_slow_writes=writes.slow,
                            journal_loop_s_total=writes.loop_s)

    # -- the budget queue (docs/LEDGER.md, "admission that waits") ----------------------------

    async def _reserve(self, msg: Reserve, corr: int) -> object | None:
        """Grant, refuse, or queue behind earlier waiters until settles free the money."""
        decision, entry = self.core.reserve(msg.reservation_id, msg.request_id, msg.tier, msg.model, msg.amount_nd,
                                              msg.generation, msg.purpose)
        if entry is not None and not self.queue:
            return await self._commit(entry, corr, reply_to(msg, decision))
        if entry is None and not decision.waitable:
            return reply_to(msg, decision)
        if msg.wait_s <= 0 or not corr:
            if entry is not None:
                decision = Decision(False, decision.remaining_nd, f"{len(self.queue)} reservations wait ahead for "
                                    "reserved money", waitable=True)
            return reply_to(msg, decision)
        self.queue.push(corr, msg, current_time())
        self._queue_changed.set()
        return None

    async def _admit(self) -> None:
        """Serve the queue's head while the money for it is there (or is truly gone)."""
        now = current_time()
        while (head := self.queue.head()) is not None:
            msg = head.reserve
            decision, entry = self.core.reserve(msg.reservation_id, msg.request_id, msg.tier, msg.model, msg.amount_nd,
                                              msg.generation, msg.purpose)
            if entry is None and decision.waitable:
                return
            self.queue.admitted(now)
            reply = reply_to(msg, decision, now - head.since)
            if entry is None:
                self.inbox.reply(head.corr, reply)
                continue
            answer = await self._commit(entry, head.corr, reply)
            if answer is not None:
                self.inbox.reply(head.corr, answer)

    def _withdraw(self, reservation_id: str) -> LedgerAck:
        """A waiter's asker gave up before any grant: nothing was reserved, nothing to release."""
        now = current_time()
        waiter = self.queue.withdraw(reservation_id, now)
        assert waiter is not None
        self.inbox.reply(waiter.corr, self._refusal(waiter, now, "withdrawn by its asker"))
        return LedgerAck(reservation_id, "withdrawn")

    def _refusal(self, waiter: Waiter, now: float, why: str) -> ReserveReply:
        return refusal(waiter, now, why, max(0, self.core.remaining("total")))

    async def _expirer(self) -> None:
        """Refuse waiters whose wait ran out; a refused head may let the next one through."""
        while True:
            deadline = self.queue.next_deadline()
            self._queue_changed = Signal()
            if deadline is None:
                await self._queue_changed.wait()
                continue
            with anyio.move_on_after(max(0.0, deadline - current_time())):
                await self._queue_changed.wait()
            now = current_time()
            expired = self.queue.expire(now)
            for waiter in expired:
                self.inbox.reply(waiter.corr, self._refusal(waiter, now, "its wait ran out"))
            if expired:
                await self._admit()
                if self._asked:
                    self._asked = False
                    self._doorbell.ring(urgent=True)

    async def _commit(self, entry: JournalEntry, corr: int, reply: object | None) -> object | None:
        applied = self._apply(entry)
        answer = reply if reply is not None else LedgerAck(entry.reservation_id, applied.outcome, applied.overrun_nd)
        if self._storage is None:
            return answer
        self._append(entry)
        if self.settings.group_commit:
            self._waiting.append((corr, answer))
            if corr:
                self._asked = True
            else:
                self._doorbell.ring(urgent=False)
            return None
        await self._flush_now()
        return answer

    async def after_burst(self, drained: bool) -> None:
        """Write what an asker waits on, with everything queued before it, before serving more.

        In a flood (not `drained`) the flusher writes instead, while this task goes on
        appending: batches then grow with the load instead of stopping at BURST.
        """
        if not self._asked or self._storage is None:
            return
        self._asked = False
        if drained:
            await self._write(self._storage)
        else:
            self._doorbell.ring(urgent=True)

    def _apply(self, entry: JournalEntry) -> Applied:
        try:
            applied = self.core.apply(entry)
        except Exception as exc:
            raise BrokenInvariant(f"the ledger could not apply its own entry {entry}: {exc!r}") from exc
        now = time.time()
        if applied.overrun_nd and self._on_event is not None:
            self._on_event(LedgerOverrun(now, entry.reservation_id, entry.amount_nd - applied.overrun_nd, entry.amount_nd))
        for alert in applied.alerts:
            event = BudgetAlert(now, alert.scope, alert.threshold, alert.spent_nd, alert.limit_nd)
            log.warning("budget: %s has spent %.0f%% of its limit", alert.scope, 100 * alert.spent_nd / alert.limit_nd)
            if self._on_event is not None:
                self._on_event(event)
            if self._alert_callback is not None:
                self._alert_callback(event)
        return applied

    def _append(self, entry: JournalEntry) -> None:
        if self._storage is not None:
            self._batch.append(journal.frame(entry))
            self._since_snapshot += 1

    async def _flush_now(self) -> None:
        """Write what is pending before answering; a failure breaks the ledger's state."""
        if self._storage is None:
            return
        try:
            await self._write(self._storage)
        except JournalError as exc:
            raise BrokenInvariant(str(exc)) from exc

    async def _write(self, storage: journal.Storage) -> None:
        """Write and fsync everything appended so far, then answer everyone waiting on it."""
        async with self._write_lock:
            if not self._batch:
                self._answer(self._waiting)
                self._waiting = []
                return
            data, self._batch = journal.commit_frame(b"".join(self._batch)), []
            waiting, self._waiting = self._waiting, []

            def write() -> None:
                storage.append(data)
                storage.sync()

            await (self._writes.run(write) if storage.blocking else self._io(write))
            self._answer(waiting)
            if self._since_snapshot >= self.settings.snapshot_every:
                self._since_snapshot = 0
                await self._compact(storage)

    async def _compact(self, storage: journal.Storage) -> None:
        snapshot = snapshot_of(self.core)
        try:
            await self._io(lambda: journal.compact(storage, snapshot))
        except (JournalError, OSError) as exc:
            log.error("ledger: compaction failed (%s); the journal keeps every record and will be compacted later", exc)

    async def _io(self, work: Callable[[], _T]) -> _T:
        """Disk work in a worker thread, so the loop never waits on the disk; memory work inline."""
        if self._storage is not None and not self._storage.blocking:
            return work()
        return await anyio.to_thread.run_sync(work)

    def _answer(self, waiting: list[tuple[int, object]]) -> None:
        for corr, answer in waiting:
            self.inbox.reply(corr, answer)

    async def _flusher(self) -> None:
        """Writes a flood's asks at once and told changes no ask came to carry after TOLD_LINGER_S.

        A write that fails crashes the actor, so that it recovers from the disk.
        """
        storage = self._storage
        assert storage is not None
        while True:
            await self._doorbell.wait(self.TOLD_LINGER_S)
            await self._write(storage)

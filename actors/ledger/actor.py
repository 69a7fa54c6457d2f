"""The ledger actor: the one place money changes, one message at a time, durably.

Each message is applied to the core as it arrives. A change is answered only after
its journal record is on disk: with group commit, the records of every message that
arrived while the previous fsync ran are written and fsynced together, then all of
them are answered, so durability costs one fsync per batch, not per request. A
denial changes nothing and is answered at once. The fsync runs in a worker thread,
so the event loop never blocks on the disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from actors.errors import LedgerError
from actors.ledger import journal
from actors.ledger.core import Applied, LedgerCore, restore, snapshot_of
from actors.ledger.messages import (
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
from actors.runtime.actor import Actor
from actors.telemetry.events import BudgetAlert, LedgerOverrun

log = logging.getLogger(__name__)

EventSink = Callable[[object], None]


def open_core(settings: LedgerSettings, storage: journal.Storage | None, where: str = "journal") -> LedgerCore:
    """Rebuild the ledger from storage; outstanding reservations become unreconciled."""
    core = LedgerCore(settings)
    if storage is None:
        return core
    recovered = journal.recover(storage, where)
    if recovered.snapshot is not None:
        restore(core, recovered.snapshot)
    for entry in recovered.entries:
        core.apply(entry)
    outstanding = core.mark_outstanding_unreconciled()
    if outstanding:
        log.warning(
            "%s: %d reservations were outstanding when the ledger stopped; they count as spent "
            "until `orchestrator budget reconcile`",
            where,
            outstanding,
        )
    return core


class LedgerActor(Actor):
    name = "ledger"

    def __init__(
        self,
        settings: LedgerSettings,
        on_event: EventSink | None = None,
        alert_callback: Callable[[BudgetAlert], None] | None = None,
        storage_factory: Callable[[], journal.Storage] | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._alert_callback = alert_callback
        self._storage_factory = storage_factory
        self._storage: journal.Storage | None = None
        self.core = LedgerCore(settings)
        self._batch: list[bytes] = []
        self._waiting: list[tuple[int, object]] = []
        self._wake = anyio.Event()
        self._since_snapshot = 0

    async def on_start(self) -> None:
        if self._storage_factory is not None:
            self._storage = self._storage_factory()
        elif self.settings.journal_path is not None:
            self._storage = journal.FileStorage(self.settings.journal_path, self.settings.state_dir)
        where = self.settings.journal_path or "journal"
        storage = self._storage
        self.core = await anyio.to_thread.run_sync(lambda: open_core(self.settings, storage, where))
        if self._storage is not None and self.settings.group_commit:
            self.tasks.start_soon(self._flusher)

    async def on_stop(self) -> None:
        if self._storage is not None:
            await self._flush()
            self._storage.close()
            self._storage = None

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, Reserve):
            decision, entry = self.core.reserve(msg.reservation_id, msg.request_id, msg.tier, msg.model, msg.amount_nd)
            reply = ReserveReply(msg.reservation_id, decision.granted, decision.remaining_nd, decision.reason)
            if entry is None:
                return reply
            return await self._commit(entry, corr, reply)
        if isinstance(msg, Settle):
            entry = self.core.settle(msg.reservation_id, msg.actual_nd, msg.input_tokens, msg.output_tokens)
            if entry is None:
                return LedgerAck(msg.reservation_id, "duplicate")
            return await self._commit(entry, corr, None)
        if isinstance(msg, Release):
            entry = self.core.release(msg.reservation_id)
            if entry is None:
                return LedgerAck(msg.reservation_id, "duplicate")
            return await self._commit(entry, corr, None)
        if isinstance(msg, StatusQuery):
            return self.core.status()
        if isinstance(msg, Reconcile):
            for entry in self.core.reconcile(msg.release):
                self._append(entry)
            await self._flush()
            return self.core.status()
        if isinstance(msg, ResetLedger):
            entry = self.core.reset()
            self._apply(entry)
            self._append(entry)
            await self._flush()
            return self.core.status()
        raise LedgerError(f"the ledger does not handle {type(msg).__name__}")

    async def _commit(self, entry: JournalEntry, corr: int, reply: object | None) -> object | None:
        applied = self._apply(entry)
        answer = reply if reply is not None else LedgerAck(entry.reservation_id, applied.outcome, applied.overrun_nd)
        if self._storage is None:
            return answer
        self._append(entry)
        if self.settings.group_commit:
            self._waiting.append((corr, answer))
            self._wake.set()
            return None
        await self._flush()
        return answer

    def _apply(self, entry: JournalEntry) -> Applied:
        applied = self.core.apply(entry)
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

    async def _flush(self) -> None:
        """Write and fsync the pending batch, then answer everyone waiting on it."""
        storage = self._storage
        if storage is None or not self._batch:
            self._answer(self._waiting)
            self._waiting = []
            return
        data, self._batch = b"".join(self._batch), []
        waiting, self._waiting = self._waiting, []

        def write() -> None:
            storage.append(data)
            storage.sync()

        await anyio.to_thread.run_sync(write)
        self._answer(waiting)
        if self._since_snapshot >= self.settings.snapshot_every:
            self._since_snapshot = 0
            snapshot = snapshot_of(self.core)
            await anyio.to_thread.run_sync(journal.compact, storage, snapshot)

    def _answer(self, waiting: list[tuple[int, object]]) -> None:
        for corr, answer in waiting:
            self.inbox.reply(corr, answer)

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._flush()

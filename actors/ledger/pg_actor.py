"""The ledger actor for the shared PostgreSQL ledger: this process's one point of contact.

It speaks the same messages as the journaled ledger actor. Reservations,
settlements, releases and holds that arrive while a batch is in flight are gathered
into the next batch: one worker-thread hop and one transaction per batch (group
commit), so throughput does not collapse into one transaction per request. Every
asker is answered only after its batch committed; an operation the rules refuse fails
that asker alone; a database that cannot be reached fails the batch's askers with
`LedgerUnavailable` (nothing was committed, nothing is lost) and the next batch
reconnects. A heartbeat renews this process's lease every third of `lease_s`. The one
connection is used by one thing at a time (`_lock`): a batch, a heartbeat, a query.

As in the journaled ledger, what is told (settle, release, hold: nobody waits for
it) does not start a transaction of its own: it waits up to TOLD_LINGER_S for the
next reserve's batch to carry it. Until then the reservation is still open in the
database, counted against every process's budget at its worst case, so the shared
limit holds; a process that dies meanwhile leaves it held until its lease expires.

Told closings are never dropped: a batch that cannot commit keeps them and sends
them again with the next batches until the database has them (idempotent by
reservation id: a repeat is a `duplicate`, an id the database never had is refused
alone), and a process that stops before that writes them to its state directory
for the next one (`unsent.py`). So after an outage the books converge.

The budget queue (`admission.py`) works across processes by polling: a reserve
denied only for money reserved in flight, by this process or another, waits, and
every TOLD_LINGER_S while anyone waits a batch asks again, waiters first in first
out, after this process's own closings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs

from actors.errors import LedgerError, LedgerUnavailable, OrchestratorError
from actors.ledger import unsent
from actors.ledger.admission import AdmissionQueue, refusal
from actors.ledger.messages import (
    Hold,
    LedgerAck,
    Reconcile,
    Release,
    Reserve,
    ReserveReply,
    ResetLedger,
    Settle,
    StatusQuery,
)
from actors.ledger.postgres import Operation, PostgresBook
from actors.ledger.settings import LedgerSettings
from actors.runtime.actor import Actor
from actors.runtime.clock import current_time
from actors.runtime.doorbell import Doorbell
from actors.telemetry.events import BudgetAlert

log = logging.getLogger(__name__)


class PostgresLedgerActor(Actor):
    name = "ledger"
    TOLD_LINGER_S = 0.05

    def __init__(
        self,
        settings: LedgerSettings,
        on_event: Callable[[object], None] | None = None,
        alert_callback: Callable[[BudgetAlert], None] | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.book = PostgresBook(settings, owner)
        self._on_event = on_event
        self._alert_callback = alert_callback
        self._pending: list[tuple[int, Operation]] = []
        self._unheard: list[unsent.Closing] = []
        """Closings a failed batch carried: sent again with every batch until the database has them."""
        self._unsent_dir = unsent.directory_of(settings.state_dir)
        self._unsent_files: list[Path] = []
        self.queue = AdmissionQueue()
        self._doorbell = Doorbell()
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return (f"<PostgresLedgerActor owner={self.book.owner} pending={len(self._pending)} "
                f"unheard={len(self._unheard)} waiting={len(self.queue)}>")

    async def on_start(self) -> None:
        if self._unsent_dir is not None and self._unsent_dir.is_dir():
            self._unheard, self._unsent_files = await anyio.to_thread.run_sync(unsent.load, self._unsent_dir)
            if self._unheard:
                log.warning("ledger: %d closings a previous process could not send are sent again",
                            len(self._unheard))
                self._doorbell.ring(urgent=False)
        await anyio.to_thread.run_sync(self.book.connect)
        self.tasks.start_soon(self._flusher)
        self.tasks.start_soon(self._heartbeat)

    async def on_stop(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._flush()
            now = current_time()
            for waiter in self.queue.expire(float("inf")):
                self.inbox.reply(waiter.corr, refusal(waiter, now, "the ledger stopped"))
            try:
                await anyio.to_thread.run_sync(self.book.withdraw_all_waiters)
            except OrchestratorError as exc:
                log.warning("ledger: this process's waiters could not leave the shared queue (%s); their rows "
                            "stop counting when their wait runs out", exc)
            if self._unheard and self._unsent_dir is not None:
                kept, self._unheard = self._unheard, []
                path = await anyio.to_thread.run_sync(unsent.save, self._unsent_dir, kept)
                log.error("ledger: the shared ledger did not hear %d closings before the stop; kept in %s and sent "
                          "again by the next process on this state directory", len(kept), path)
                await anyio.to_thread.run_sync(unsent.discard, self._unsent_files)
        await anyio.to_thread.run_sync(self.book.close)

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, Reserve) and self.queue and msg.wait_s > 0 and corr:
            self.queue.push(corr, msg, current_time())
            return None
        if isinstance(msg, Release) and self._withdraw(msg.reservation_id):
            return LedgerAck(msg.reservation_id, "withdrawn")
        if isinstance(msg, (Reserve, Settle, Release, Hold)):
            self._pending.append((corr, msg))
            self._doorbell.ring(urgent=bool(corr))
            return None
        async with self._lock:
            if isinstance(msg, StatusQuery):
                return self.queue.stats().onto(await anyio.to_thread.run_sync(self.book.status))
            if isinstance(msg, Reconcile):
                return await anyio.to_thread.run_sync(self.book.reconcile, msg.release)
            if isinstance(msg, ResetLedger):
                raise LedgerError("a shared ledger is not reset from one process; reconcile, or start a new database")
        raise LedgerError(f"the ledger does not handle {type(msg).__name__}")

    def _withdraw(self, reservation_id: str) -> bool:
        """A release for a reserve not yet granted: the asker gave up, so the reserve is never sent."""
        now = current_time()
        waiter = self.queue.withdraw(reservation_id, now)
        if waiter is not None:
            self.book.forget_waiters([reservation_id])
            self.inbox.reply(waiter.corr, refusal(waiter, now, "withdrawn by its asker"))
            return True
        for index, (corr, op) in enumerate(self._pending):
            if isinstance(op, Reserve) and op.reservation_id == reservation_id:
                del self._pending[index]
                self.inbox.reply(corr, ReserveReply(reservation_id, False, 0, "withdrawn by its asker"))
                return True
        return False

    async def _flusher(self) -> None:
        while True:
            await self._doorbell.wait(self.TOLD_LINGER_S)
            await self._flush()
            if self.queue or self._unheard:
                self._doorbell.ring(urgent=False)

    async def _flush(self) -> None:
        """One batch: closings (the unheard ones first), then the queue's waiters in order, then new reserves."""
        async with self._lock:
            now = current_time()
            expired = self.queue.expire(now)
            self.book.forget_waiters([w.reserve.reservation_id for w in expired])
            for waiter in expired:
                self.inbox.reply(waiter.corr, refusal(waiter, now, "its wait ran out"))
            arrived, self._pending = self._pending, []
            pending: list[tuple[int, Operation]] = []
            for corr, op in arrived:
                if isinstance(op, Release) and self._withdraw(op.reservation_id):
                    self.inbox.reply(corr, LedgerAck(op.reservation_id, "withdrawn"))
                else:
                    pending.append((corr, op))
            closings = [(0, c) for c in self._unheard] + [(c, op) for c, op in pending if not isinstance(op, Reserve)]
            waiters = self.queue.waiters()
            batch = closings + [(w.corr, w.reserve) for w in waiters] + [(c, op) for c, op in pending
                                                                       if isinstance(op, Reserve)]
            if not batch:
                return
            try:
                replies, alerts, _ = await anyio.to_thread.run_sync(self.book.apply_batch, [op for _, op in batch])
            except OrchestratorError as exc:
                self._failed(batch, exc)
                return
            self._unheard = []
            if self._unsent_files:
                files, self._unsent_files = self._unsent_files, []
                await anyio.to_thread.run_sync(unsent.discard, files)
        now = current_time()
        for (corr, op), reply in zip(batch, replies):
            if isinstance(op, Reserve):
                self._answer_reserve(corr, op, reply, now)
            elif isinstance(reply, OrchestratorError):
                self.inbox.fail(corr, reply)
            else:
                self.inbox.reply(corr, reply)
        for alert in alerts:
            event = BudgetAlert(time.time(), alert.scope, alert.threshold, alert.spent_nd, alert.limit_nd)
            log.warning("budget: %s has spent %.0f%% of its limit", alert.scope, 100 * alert.spent_nd / alert.limit_nd)
            if self._on_event is not None:
                self._on_event(event)
            if self._alert_callback is not None:
                self._alert_callback(event)

    def _answer_reserve(self, corr: int, op: Reserve, reply: object, now: float) -> None:
        """Answer a reserve, or keep it waiting: undecided (behind a blocked waiter) or blocked itself."""
        waits = reply is None or (isinstance(reply, ReserveReply) and reply.waitable and op.wait_s > 0)
        queued = op.reservation_id in self.queue
        if waits:
            if not queued:
                self.queue.push(corr, op, now)
            return
        since = self.queue.take(op.reservation_id, now) if queued else None
        if isinstance(reply, OrchestratorError):
            self.inbox.fail(corr, reply)
        elif isinstance(reply, ReserveReply) and since is not None:
            self.inbox.reply(corr, attrs.evolve(reply, waited_s=now - since))
        else:
            self.inbox.reply(corr, reply)

    def _failed(self, batch: list[tuple[int, Operation]], exc: OrchestratorError) -> None:
        """Nothing was committed: reserves fail, closings are kept to be sent again."""
        error = exc if isinstance(exc, LedgerUnavailable) else LedgerUnavailable(str(exc))
        now = current_time()
        kept: list[unsent.Closing] = []
        self.book.forget_waiters([op.reservation_id for _, op in batch if isinstance(op, Reserve)])
        for corr, op in batch:
            if isinstance(op, Reserve):
                if op.reservation_id in self.queue:
                    self.queue.take(op.reservation_id, now)
                self.inbox.fail(corr, error)
            else:
                kept.append(op)
                if corr:
                    self.inbox.fail(corr, error)
        if len(kept) > len(self._unheard):
            log.warning("ledger: %d closings not heard by the shared ledger (%s); they are sent again until it "
                        "answers", len(kept) - len(self._unheard), error)
        self._unheard = kept

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(self.settings.lease_s / 3)
            try:
                async with self._lock:
                    await anyio.to_thread.run_sync(self.book.heartbeat)
            except OrchestratorError as exc:
                log.warning("ledger: lease not renewed (%s); trying again", exc)


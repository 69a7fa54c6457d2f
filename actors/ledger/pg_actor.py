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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from actors.errors import LedgerError, LedgerUnavailable, OrchestratorError
from actors.ledger.messages import Hold, Reconcile, Release, Reserve, ResetLedger, Settle, StatusQuery
from actors.ledger.postgres import Operation, PostgresBook
from actors.ledger.settings import LedgerSettings
from actors.runtime.actor import Actor
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
        self._doorbell = Doorbell()
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"<PostgresLedgerActor owner={self.book.owner} pending={len(self._pending)}>"

    async def on_start(self) -> None:
        await anyio.to_thread.run_sync(self.book.connect)
        self.tasks.start_soon(self._flusher)
        self.tasks.start_soon(self._heartbeat)

    async def on_stop(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._flush()
        await anyio.to_thread.run_sync(self.book.close)

    async def handle(self, msg: object, corr: int) -> object | None:
        if isinstance(msg, (Reserve, Settle, Release, Hold)):
            self._pending.append((corr, msg))
            self._doorbell.ring(urgent=bool(corr))
            return None
        async with self._lock:
            if isinstance(msg, StatusQuery):
                return await anyio.to_thread.run_sync(self.book.status)
            if isinstance(msg, Reconcile):
                return await anyio.to_thread.run_sync(self.book.reconcile, msg.release)
            if isinstance(msg, ResetLedger):
                raise LedgerError("a shared ledger is not reset from one process; reconcile, or start a new database")
        raise LedgerError(f"the ledger does not handle {type(msg).__name__}")

    async def _flusher(self) -> None:
        while True:
            await self._doorbell.wait(self.TOLD_LINGER_S)
            await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                replies, alerts, _ = await anyio.to_thread.run_sync(self.book.apply_batch, [op for _, op in batch])
            except OrchestratorError as exc:
                error = exc if isinstance(exc, LedgerUnavailable) else LedgerUnavailable(str(exc))
                for corr, _ in batch:
                    self.inbox.fail(corr, error)
                return
        for (corr, _), reply in zip(batch, replies):
            if isinstance(reply, OrchestratorError):
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

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(self.settings.lease_s / 3)
            try:
                async with self._lock:
                    await anyio.to_thread.run_sync(self.book.heartbeat)
            except OrchestratorError as exc:
                log.warning("ledger: lease not renewed (%s); trying again", exc)

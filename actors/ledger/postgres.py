"""The ledger's authority on PostgreSQL, shared by every orchestrator process that names it.

Each batch of operations (what one process's ledger actor gathered while the previous
batch was in flight) is decided inside one transaction that first locks the `total`
budget row, so every process's batches are serialized by the database: the invariant
settled + outstanding ≤ limit holds across processes. Inside the transaction the
rows the batch touches (its scopes and reservations) are loaded into a `LedgerCore`
and the batch runs through the very same rules as the journaled ledger (limits per
total, day, month and tier; two phases; idempotent repeats; overruns; alerts); the
changed rows are written back and the transaction commits before anyone is answered.
An operation the rules refuse is a `LedgerError` for that operation alone.

Leases: every process is an owner (host:pid:uuid) with a lease it renews. Its open
reservations count as spent whatever happens to it; once its lease has expired (it
died), `reconcile` may charge or release them, never a live owner's.

psycopg 3 (sync API, in a worker thread): well kept, binary wheels, and usable under
both anyio backends, where the async drivers (asyncpg, psycopg's AsyncConnection)
need an asyncio loop and the engine also runs under trio. A batch costs one thread
hop and a handful of statements on one connection, however many operations it holds.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

from actors.errors import LedgerError, LedgerUnavailable
from actors.ledger.admission import reply_to
from actors.ledger.core import TOTAL, Alert, LedgerCore, Reservation
from actors.ledger.messages import BudgetStatus, Hold, LedgerAck, Release, Reserve, ReserveReply, Settle
from actors.ledger.settings import LedgerSettings

SCHEMA_VERSION = "2"
WAITING_TABLE = (
    "CREATE TABLE IF NOT EXISTS ledger_waiting (id text PRIMARY KEY, owner text NOT NULL,"
    " since double precision NOT NULL, until double precision NOT NULL)"
)
MIGRATIONS = {"1": (WAITING_TABLE, "UPDATE ledger_meta SET value = '2' WHERE key = 'schema'")}
"""From each older version, the statements that bring a shared ledger to the next one."""
SCHEMA = (
    WAITING_TABLE,
    "CREATE TABLE IF NOT EXISTS ledger_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_scopes (scope text PRIMARY KEY, settled_nd bigint NOT NULL DEFAULT 0,"
    " reserved_nd bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS ledger_reservations (id text PRIMARY KEY, request_id text NOT NULL,"
    " tier text NOT NULL, model text NOT NULL, amount_nd bigint NOT NULL, scopes text[] NOT NULL,"
    " state text NOT NULL, settled_nd bigint NOT NULL DEFAULT 0, owner text NOT NULL,"
    " created_at double precision NOT NULL, closed_at double precision)",
    "CREATE INDEX IF NOT EXISTS ledger_open ON ledger_reservations (owner) WHERE state IN ('open', 'held')",
    "CREATE TABLE IF NOT EXISTS ledger_owners (owner text PRIMARY KEY, lease_until double precision NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_alerts (scope text NOT NULL, threshold double precision NOT NULL,"
    " PRIMARY KEY (scope, threshold))",
    "CREATE TABLE IF NOT EXISTS ledger_counters (name text PRIMARY KEY, value bigint NOT NULL)",
    f"INSERT INTO ledger_meta VALUES ('schema', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING",
    "INSERT INTO ledger_scopes (scope) VALUES ('total') ON CONFLICT DO NOTHING",
    "INSERT INTO ledger_counters VALUES ('overruns', 0), ('operations', 0) ON CONFLICT DO NOTHING",
)
Operation = Reserve | Settle | Release | Hold


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PostgresBook:
    """One process's connection to the shared ledger; every method is blocking (run it in a thread)."""

    def __init__(self, settings: LedgerSettings, owner: str | None = None) -> None:
        if not settings.dsn:
            raise LedgerError("budget.backend postgres needs budget.dsn (for example ${ORCHESTRATOR_PG_DSN})")
        self.settings = settings
        self.owner = owner or new_owner()
        self._conn: Any = None
        self._waiting_since: dict[str, float] = {}
        """This process's reserves registered in `ledger_waiting`, by id: when each began to wait (wall clock)."""
        self._forget_waiting: set[str] = set()
        """Registered waiters decided outside a batch (expired, withdrawn, failed): their rows go in the next one."""

    def __repr__(self) -> str:
        return f"<PostgresBook owner={self.owner} connected={self._conn is not None}>"

    # -- connection --------------------------------------------------------------------

    def connect(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(self.settings.dsn, autocommit=False, connect_timeout=10)
            with self._conn.transaction():
                version = self._schema_version()
                if version is None:
                    self._conn.execute("SELECT pg_advisory_xact_lock(72157)")
                    for statement in SCHEMA:
                        self._conn.execute(statement)
                    version = self._schema_version()
                while version in MIGRATIONS:
                    self._conn.execute("SELECT pg_advisory_xact_lock(72157)")
                    if self._schema_version() == version:
                        for statement in MIGRATIONS[version]:
                            self._conn.execute(statement)
                    version = self._schema_version()
            if version != SCHEMA_VERSION:
                raise LedgerError(f"the shared ledger's schema is version {version}; this program uses {SCHEMA_VERSION}")
            self.heartbeat()
        except psycopg.Error as exc:
            self._drop()
            raise LedgerUnavailable(f"the shared ledger is unreachable: {_first_line(exc)}") from exc
        except BaseException:
            self._drop()  # a schema this program does not know is never read or written
            raise

    def _schema_version(self) -> str | None:
        """The shared schema's version, or None before it exists (DDL only then: it locks tables)."""
        if self._conn.execute("SELECT to_regclass('ledger_meta')").fetchone()[0] is None:
            return None
        row = self._conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema'").fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _run(self, work: Any) -> Any:
        """Run `work(conn)` in one transaction, reconnecting first if the last one was lost."""
        import psycopg

        if self._conn is None:
            self.connect()
        try:
            with self._conn.transaction():
                return work(self._conn)
        except psycopg.Error as exc:
            self._drop()
            raise LedgerUnavailable(f"the shared ledger failed mid-transaction (nothing was committed): "
                                    f"{_first_line(exc)}") from exc

    # -- leases ------------------------------------------------------------------------

    def heartbeat(self) -> None:
        until = time.time() + self.settings.lease_s

        def renew(conn: Any) -> None:
            conn.execute(
                "INSERT INTO ledger_owners VALUES (%s, %s) ON CONFLICT (owner) DO UPDATE SET lease_until = EXCLUDED.lease_until",
                (self.owner, until),
            )

        self._run(renew)

    # -- the batch ---------------------------------------------------------------------

    def apply_batch(self, ops: Sequence[Operation], now: float | None = None) -> tuple[list[object], list[Alert], int]:
        """Decide every operation in one transaction: a reply or a LedgerError per op, alerts, overruns."""
        at = time.time() if now is None else now
        return self._run(lambda conn: self._decide(conn, ops, at))  # type: ignore[no-any-return]

    def _decide(self, conn: Any, ops: Sequence[Operation], at: float) -> tuple[list[object], list[Alert], int]:
        """Replies in order; a reserve that waits (wait_s > 0) behind one denied for reserved money gets None.

        That keeps the budget queue first in, first out inside a batch: once one
        waiter is blocked, the waiters after it are not decided (they would overtake it).
        """
        conn.execute("SELECT 1 FROM ledger_scopes WHERE scope = 'total' FOR UPDATE")
        core = _BatchCore(self.settings, conn, at)
        waiting = _Waiting(self, conn, at)
        ids = sorted({op.reservation_id for op in ops})
        known = conn.execute(
            "SELECT id, request_id, tier, model, amount_nd, scopes, state FROM ledger_reservations"
            " WHERE id = ANY(%s) FOR UPDATE", (ids,),
        ).fetchall()
        before: dict[str, str] = {}
        for rid, request_id, tier, model, amount, scopes, state in known:
            before[rid] = state
            if state in ("open", "held"):
                core.reservations[rid] = Reservation(request_id, tier, model, amount, tuple(scopes), state == "held")
            else:
                core.closed[rid] = state  # final: a repeat is a duplicate, anything else refused, nothing rewritten
        scopes = {TOTAL}
        for op in ops:
            if isinstance(op, Reserve):
                scopes.update(core.scopes_read_by(op.tier, at, op.generation, op.purpose))
        for res in core.reservations.values():
            scopes.update(res.scopes)
        ordered = sorted(scopes)
        conn.cursor().executemany("INSERT INTO ledger_scopes (scope) VALUES (%s) ON CONFLICT DO NOTHING",
                                  [(s,) for s in ordered])
        for scope, settled, reserved in conn.execute(
            "SELECT scope, settled_nd, reserved_nd FROM ledger_scopes WHERE scope = ANY(%s) ORDER BY scope FOR UPDATE",
            (ordered,),
        ).fetchall():
            core.settled[scope] = settled
            core.reserved[scope] = reserved
        core.alerted = {(s, t) for s, t in conn.execute(
            "SELECT scope, threshold FROM ledger_alerts WHERE scope = ANY(%s)", (ordered,)).fetchall()}
        replies: list[object] = []
        alerts: list[Alert] = []
        created: dict[str, Reservation] = {}
        blocked = False
        for op in ops:
            if isinstance(op, Reserve) and op.wait_s > 0 and (blocked or waiting.behind_others(op.reservation_id)):
                waiting.register(op)
                replies.append(None)
                continue
            try:
                reply, applied_alerts = self._one(core, op)
                if isinstance(op, Reserve) and op.reservation_id in core.reservations and op.reservation_id not in before:
                    created.setdefault(op.reservation_id, core.reservations[op.reservation_id])
            except LedgerError as exc:
                waiting.decided(op.reservation_id)
                replies.append(exc)
                continue
            if isinstance(op, Reserve) and op.wait_s > 0:
                if isinstance(reply, ReserveReply) and reply.waitable:
                    blocked = True
                    waiting.register(op)
                else:
                    waiting.decided(op.reservation_id)
            replies.append(reply)
            alerts.extend(applied_alerts)
        self._write(conn, core, before, created, ordered, at, alerts)
        waiting.write()
        return replies, alerts, core.overruns

    def forget_waiters(self, reservation_ids: Sequence[str]) -> None:
        """Waiters decided without the database (a wait ran out, an asker gave up, a batch failed)."""
        for rid in reservation_ids:
            if self._waiting_since.pop(rid, None) is not None:
                self._forget_waiting.add(rid)

    def withdraw_all_waiters(self) -> None:
        """At a stop: this process's waiters leave the shared queue."""
        self.forget_waiters(list(self._waiting_since))
        if self._forget_waiting:
            gone = sorted(self._forget_waiting)
            self._run(lambda conn: conn.execute("DELETE FROM ledger_waiting WHERE id = ANY(%s)", (gone,)))
            self._forget_waiting.clear()

    @staticmethod
    def _one(core: LedgerCore, op: Operation) -> tuple[object, tuple[Alert, ...]]:
        if isinstance(op, Reserve):
            decision, entry = core.reserve(op.reservation_id, op.request_id, op.tier, op.model, op.amount_nd,
                                           op.generation, op.purpose)
            if entry is not None:
                core.apply(entry)
            return reply_to(op, decision), ()
        if isinstance(op, Settle):
            entry = core.settle(op.reservation_id, op.actual_nd, op.input_tokens, op.output_tokens)
        elif isinstance(op, Release):
            entry = core.release(op.reservation_id)
        else:
            entry = core.hold(op.reservation_id)
        if entry is None:
            return LedgerAck(op.reservation_id, "duplicate"), ()
        applied = core.apply(entry)
        return LedgerAck(op.reservation_id, applied.outcome, applied.overrun_nd), applied.alerts

    def _write(self, conn: Any, core: LedgerCore, before: dict[str, str], created: dict[str, Reservation],
               scopes: list[str], at: float, alerts: list[Alert]) -> None:
        """Write back what the batch changed: scope totals, new reservations (in their final state), closures."""
        cursor = conn.cursor()
        cursor.executemany(
            "UPDATE ledger_scopes SET settled_nd = %s, reserved_nd = %s WHERE scope = %s",
            [(core.settled.get(s, 0), core.reserved.get(s, 0), s) for s in scopes],
        )
        inserts, updates = [], []
        for rid, res in created.items():
            state, settled, closed_at = self._final(core, rid)
            inserts.append((rid, res.request_id, res.tier, res.model, res.amount_nd, list(res.scopes), state, settled,
                            self.owner, at, closed_at))
        for rid, was in before.items():
            state, settled, closed_at = self._final(core, rid)
            if state != was:
                updates.append((state, settled, closed_at, rid))
        if inserts:
            cursor.executemany(
                "INSERT INTO ledger_reservations (id, request_id, tier, model, amount_nd, scopes, state, settled_nd,"
                " owner, created_at, closed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", inserts,
            )
        if updates:
            cursor.executemany(
                "UPDATE ledger_reservations SET state = %s, settled_nd = %s, closed_at = %s WHERE id = %s", updates,
            )
        if alerts:
            cursor.executemany("INSERT INTO ledger_alerts VALUES (%s, %s) ON CONFLICT DO NOTHING",
                               [(a.scope, a.threshold) for a in alerts])
        if core.operations:
            cursor.execute("UPDATE ledger_counters SET value = value + %s WHERE name = 'operations'", (core.operations,))
        if core.overruns:
            cursor.execute("UPDATE ledger_counters SET value = value + %s WHERE name = 'overruns'", (core.overruns,))

    @staticmethod
    def _final(core: LedgerCore, rid: str) -> tuple[str, int, float | None]:
        if rid in core.reservations:
            return ("held" if core.reservations[rid].unreconciled else "open"), 0, None
        return core.closed[rid], core.settled_by_reservation.get(rid, 0), time.time()

    # -- views and maintenance -----------------------------------------------------------

    def status(self) -> BudgetStatus:
        def read(conn: Any) -> BudgetStatus:
            core = LedgerCore(self.settings)
            for scope, settled, reserved in conn.execute("SELECT scope, settled_nd, reserved_nd FROM ledger_scopes"):
                core.settled[scope] = settled
                core.reserved[scope] = reserved
            outstanding, unreconciled = conn.execute(
                "SELECT count(*), coalesce(sum(amount_nd) FILTER (WHERE state = 'held' OR owner IN"
                " (SELECT owner FROM ledger_owners WHERE lease_until < %s)), 0)"
                " FROM ledger_reservations WHERE state IN ('open', 'held')", (time.time(),),
            ).fetchone()
            counters = dict(conn.execute("SELECT name, value FROM ledger_counters").fetchall())
            core.overruns = counters.get("overruns", 0)
            core.operations = counters.get("operations", 0)
            status = core.status()
            return BudgetStatus(status.limit_nd, status.settled_nd, status.reserved_nd, int(unreconciled),
                                status.remaining_nd, outstanding, status.overruns, status.operations, status.limits)

        return self._run(read)  # type: ignore[no-any-return]

    def owners(self) -> list[dict[str, object]]:
        """Per process: its lease, what it has settled and what it holds open."""
        def read(conn: Any) -> list[dict[str, object]]:
            rows = conn.execute(
                "SELECT o.owner, o.lease_until, coalesce(sum(r.settled_nd) FILTER (WHERE r.state = 'settled'), 0),"
                " coalesce(sum(r.amount_nd) FILTER (WHERE r.state IN ('open', 'held')), 0),"
                " count(*) FILTER (WHERE r.state IN ('open', 'held'))"
                " FROM ledger_owners o LEFT JOIN ledger_reservations r ON r.owner = o.owner"
                " GROUP BY o.owner, o.lease_until ORDER BY o.owner"
            ).fetchall()
            now = time.time()
            return [{"owner": owner, "alive": lease >= now, "settled_nd": int(settled), "open_nd": int(held),
                     "open": int(count)} for owner, lease, settled, held, count in rows]

        return self._run(read)  # type: ignore[no-any-return]

    def reconcile(self, release: bool = False) -> BudgetStatus:
        """Charge (or release) the open reservations of owners whose lease expired, never a live owner's."""
        def dead_ids(conn: Any) -> list[str]:
            return [r[0] for r in conn.execute(
                "SELECT r.id FROM ledger_reservations r JOIN ledger_owners o ON o.owner = r.owner"
                " WHERE r.state IN ('open', 'held') AND o.lease_until < %s", (time.time(),),
            ).fetchall()]

        ids = self._run(dead_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self._run(lambda conn, chunk=chunk: self._settle_dead(conn, chunk, release))
        return self.status()

    def _settle_dead(self, conn: Any, ids: list[str], release: bool) -> None:
        amounts = dict(conn.execute(
            "SELECT id, amount_nd FROM ledger_reservations WHERE id = ANY(%s) AND state IN ('open', 'held')", (ids,),
        ).fetchall())
        ops: list[Operation] = [Release(rid) if release else Settle(rid, amounts[rid]) for rid in amounts]
        self._decide(conn, ops, time.time())


class _Waiting:
    """The budget queue shared by every process: first in, first out across processes too.

    A reserve that waits is registered (id, owner, since, until) in `ledger_waiting`.
    One of this process's waiters is decided only when no live waiter of another
    process began to wait before it; otherwise it stays waiting, as it would behind a
    local head. Rows of a process that died stop counting at their `until` (the
    longest they could wait) or when the owner's lease expires, whichever is first.
    """

    def __init__(self, book: PostgresBook, conn: Any, at: float) -> None:
        self._book = book
        self._conn = conn
        self._at = at
        self._others_oldest: float | None | bool = False
        self._new: dict[str, tuple[float, float]] = {}

    def behind_others(self, rid: str) -> bool:
        if self._others_oldest is False:
            self._others_oldest = self._conn.execute(
                "SELECT min(w.since) FROM ledger_waiting w JOIN ledger_owners o ON o.owner = w.owner"
                " WHERE w.owner <> %s AND w.until > %s AND o.lease_until >= %s",
                (self._book.owner, self._at, self._at),
            ).fetchone()[0]
        oldest = self._others_oldest
        since = self._book._waiting_since.get(rid, self._at)
        return oldest is not None and oldest < since

    def register(self, op: Reserve) -> None:
        if op.reservation_id not in self._book._waiting_since:
            self._book._waiting_since[op.reservation_id] = self._at
            self._new[op.reservation_id] = (self._at, self._at + op.wait_s)

    def decided(self, rid: str) -> None:
        self._book.forget_waiters([rid])

    def write(self) -> None:
        if self._new:
            self._conn.cursor().executemany(
                "INSERT INTO ledger_waiting VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                [(rid, self._book.owner, since, until) for rid, (since, until) in self._new.items()],
            )
        if self._book._forget_waiting:
            gone = sorted(self._book._forget_waiting)
            self._conn.execute("DELETE FROM ledger_waiting WHERE id = ANY(%s)", (gone,))
            self._book._forget_waiting.clear()


class _BatchCore(LedgerCore):
    """The core for one batch: what held reservations count per scope is read only when a denial asks.

    `held` then holds only this batch's changes; the database's held money (held
    reservations, and open ones of owners whose lease expired: no settle will come
    for either) is added to it, read once, inside the batch's transaction. Its counters
    (operations, overruns) start at zero: they count this batch's, added to the database's.
    """

    def __init__(self, settings: LedgerSettings, conn: Any, at: float) -> None:
        super().__init__(settings, wall_clock=lambda: at)
        self._conn = conn
        self._at = at
        self._stored_held: dict[str, int] | None = None

    def held_nd(self, scope: str) -> int:
        if self._stored_held is None:
            self._stored_held = {
                name: int(amount) for name, amount in self._conn.execute(
                    "SELECT s, sum(r.amount_nd) FROM ledger_reservations r, unnest(r.scopes) s"
                    " WHERE r.state = 'held' OR (r.state = 'open' AND r.owner IN"
                    " (SELECT owner FROM ledger_owners WHERE lease_until < %s)) GROUP BY s", (self._at,),
                ).fetchall()
            }
        return self._stored_held.get(scope, 0) + self.held.get(scope, 0)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


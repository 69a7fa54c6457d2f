"""The ledger's state machine: reservations, settlements and limits, with no I/O.

Two-phase, like a bank's pending transfers. `reserve` grants only when, for every
limit that applies (the total, the reservation's UTC day and month, its tier's cap),
settled + outstanding reservations + the new amount stays within the limit. So at
every instant settled + outstanding <= limit, as long as settlements stay within
their reservations. A settlement above its reservation (a provider that ignored
max_tokens) is charged in full and reported as an overrun: that is the one way
spending can pass a limit, by at most the overrun, which the safety margin exists
to absorb.

Every change is a `JournalEntry`; `apply` is the only mutator, so replaying the
journal rebuilds the same state, and the actor journals exactly what it applied.
Operations check everything before they return an entry, so `apply` cannot fail on
an entry they made; one that does means the state is broken.

A hold marks a reservation whose call's outcome cannot be known (the request left
the machine, then the answer was lost): it stays counted as spent, like the
reservations a crash leaves behind, until `reconcile` decides it.

Closed reservations are remembered for idempotency (a repeated settle or release is
a no-op) and for the audit, up to `settings.closed_memory` of the most recent ones;
older ids are forgotten, so memory stays bounded however long the ledger lives.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import attrs

from actors.errors import LedgerError
from actors.ledger.messages import (
    BudgetStatus,
    JournalEntry,
    LedgerSnapshot,
    LimitStatus,
    SnapshotReservation,
)
from actors.ledger.pacing import NO_GENERATION, generation_scope, parse_generation_scope
from actors.ledger.settings import LedgerSettings

TOTAL = "total"


@attrs.define
class Reservation:
    request_id: str
    tier: str
    model: str
    amount_nd: int
    scopes: tuple[str, ...]
    unreconciled: bool = False


@attrs.frozen
class Decision:
    granted: bool
    remaining_nd: int
    reason: str = ""
    waitable: bool = False
    """Denied only because in-flight reservations hold the money: it would fit once they settle."""


@attrs.frozen
class Alert:
    scope: str
    threshold: float
    spent_nd: int
    limit_nd: int


@attrs.frozen
class Applied:
    """What applying one entry did: the outcome word, any overrun, alerts it crossed."""

    outcome: str
    overrun_nd: int = 0
    alerts: tuple[Alert, ...] = ()


def period_scopes(at: float) -> tuple[str, str]:
    """The UTC day and month of an instant."""
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    return f"day:{moment:%Y-%m-%d}", f"month:{moment:%Y-%m}"


class LedgerCore:
    def __init__(self, settings: LedgerSettings, wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._wall = wall_clock
        self.seq = 0
        self.operations = 0
        self._today: tuple[int, tuple[str, str]] = (-1, ("", ""))
        """The UTC day of the last operation and its scopes: formatted once per day, not once per operation."""
        self._clear()

    def _clear(self) -> None:
        self.reservations: dict[str, Reservation] = {}
        self.closed: OrderedDict[str, str] = OrderedDict()
        self.settled: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        self.held: dict[str, int] = {}
        """Per scope, what held (unreconciled) reservations count: money no settle will free."""
        self.settled_by_reservation: OrderedDict[str, int] = OrderedDict()
        self.overruns = 0
        self.alerted: set[tuple[str, float]] = set()

    # -- limits ------------------------------------------------------------------------

    def limit_of(self, scope: str) -> int | None:
        return self._usage(scope)[0]

    def _fixed_limit(self, scope: str) -> int | None:
        if scope == TOTAL:
            return self.settings.limit_nd
        kind, _, name = scope.partition(":")
        if kind == "day":
            return self.settings.daily_limit_nd
        if kind == "month":
            return self.settings.monthly_limit_nd
        if kind == "tier":
            return self.settings.tier_caps_nd.get(name)
        pacing = self.settings.pacing
        return None if pacing is None else pacing.limit_of(kind, name)

    def _usage(self, scope: str) -> tuple[int | None, int, int, int]:
        """A scope's limit, its settled and reserved money, and what of the money it counts settles.

        Settling money is what open reservations hold that settles or is released
        (reserved less held): what waiting could free.

        A generation's scope with carry-over counts the run's generations up to it
        against their cumulative allotment; its limit is then shown as its own
        allotment plus what earlier generations left (docs/LEDGER.md, "pacing").
        """
        settled, reserved = self.settled.get(scope, 0), self.reserved.get(scope, 0)
        settling = reserved - self.held_nd(scope)
        pacing = self.settings.pacing
        generation = None if pacing is None else parse_generation_scope(scope)
        if generation is None:
            return self._fixed_limit(scope), settled, reserved, settling
        assert pacing is not None
        run, g = generation
        if run != pacing.run:
            return None, settled, reserved, settling
        if not pacing.carry_over:
            return pacing.allotment(g), settled, reserved, settling
        for scope_before in self.generation_scopes_before(run, g):
            earlier_reserved = self.reserved.get(scope_before, 0)
            settled += self.settled.get(scope_before, 0)
            reserved += earlier_reserved
            settling += earlier_reserved - self.held_nd(scope_before)
        limit = pacing.cumulative(g)
        return limit, settled, reserved, settling

    def generation_scopes_before(self, run: str, generation: int) -> Iterator[str]:
        for earlier in range(generation):
            yield generation_scope(run, earlier)

    def scopes_for(self, tier: str, at: float, generation: int = NO_GENERATION, purpose: str = "") -> tuple[str, ...]:
        number = int(at // 86_400)
        if number != self._today[0]:
            self._today = (number, period_scopes(at))
        day, month = self._today[1]
        scopes = [TOTAL]
        if self.settings.daily_limit_nd is not None:
            scopes.append(day)
        if self.settings.monthly_limit_nd is not None:
            scopes.append(month)
        if tier in self.settings.tier_caps_nd:
            scopes.append(f"tier:{tier}")
        if self.settings.pacing is not None:
            scopes.extend(self.settings.pacing.scopes(generation, purpose))
        return tuple(scopes)

    def scopes_read_by(self, tier: str, at: float, generation: int = NO_GENERATION, purpose: str = "") -> set[str]:
        """Every scope a reservation's decision reads: its own, and earlier generations' under carry-over."""
        scopes = set(self.scopes_for(tier, at, generation, purpose))
        pacing = self.settings.pacing
        if pacing is not None and pacing.carry_over and generation != NO_GENERATION:
            scopes.update(self.generation_scopes_before(pacing.run, generation))
        return scopes

    def remaining(self, scope: str) -> int:
        limit, settled, reserved, _ = self._usage(scope)
        if limit is None:
            return 0
        return limit - settled - reserved

    def held_nd(self, scope: str) -> int:
        return self.held.get(scope, 0)

    # -- decisions (no state change) ---------------------------------------------------------

    def check(self, tier: str, amount_nd: int, at: float, generation: int = NO_GENERATION, purpose: str = "") -> Decision:
        """Grant if every limit has room; else say whether settles of reservations in flight could make room.

        A denial is `waitable` when, for every limit it fails, settled + held + the
        amount stays within the limit: only open reservations, which settle or are
        released, stand in the way. Otherwise the money is truly gone.
        """
        if amount_nd < 0:
            raise LedgerError(f"a reservation cannot be negative: {amount_nd}")
        tightest: int | None = None
        blocked = ""
        for scope in self.scopes_for(tier, at, generation, purpose):
            limit, settled, reserved, settling = self._usage(scope)
            if limit is None:
                continue
            left = limit - settled - reserved
            tightest = left if tightest is None else min(tightest, left)
            if amount_nd <= left:
                continue
            if amount_nd > left + settling:
                return Decision(False, max(0, tightest), f"{scope} limit: needs {amount_nd} nd, {max(0, left)} nd left")
            blocked = blocked or (
                f"{scope} limit: needs {amount_nd} nd, {max(0, left)} nd left while "
                f"{reserved} nd is reserved by requests in flight"
            )
        assert tightest is not None
        if blocked:
            return Decision(False, max(0, tightest), blocked, waitable=True)
        return Decision(True, tightest - amount_nd)

    # -- operations: each returns the entry to journal, or None when nothing changes --------

    def reserve(self, reservation_id: str, request_id: str, tier: str, model: str, amount_nd: int,
                generation: int = NO_GENERATION, purpose: str = "") -> tuple[Decision, JournalEntry | None]:
        at = self._wall()
        if reservation_id in self.reservations or reservation_id in self.closed:
            raise LedgerError(f"reservation {reservation_id} already exists")
        decision = self.check(tier, amount_nd, at, generation, purpose)
        if not decision.granted:
            return decision, None
        return decision, JournalEntry(self.seq + 1, "reserve", reservation_id, at, amount_nd, request_id, tier, model,
                                      generation=generation, purpose=purpose)

    def settle(self, reservation_id: str, actual_nd: int, input_tokens: int = 0, output_tokens: int = 0) -> JournalEntry | None:
        if actual_nd < 0:
            raise LedgerError(f"a settlement cannot be negative: {actual_nd}")
        if reservation_id in self.closed:
            if self.closed[reservation_id] == "released":
                raise LedgerError(f"reservation {reservation_id} was released; it cannot be settled")
            return None
        if reservation_id not in self.reservations:
            raise LedgerError(f"unknown reservation {reservation_id}")
        return self._entry("settle", reservation_id, self._wall(), actual_nd, input_tokens=input_tokens, output_tokens=output_tokens)

    def hold(self, reservation_id: str) -> JournalEntry | None:
        """Keep a reservation counted as spent until reconciled: its call's outcome is unknown."""
        res = self.reservations.get(reservation_id)
        if res is None:
            if reservation_id in self.closed:
                raise LedgerError(f"reservation {reservation_id} is already {self.closed[reservation_id]}; it cannot be held")
            raise LedgerError(f"unknown reservation {reservation_id}")
        if res.unreconciled:
            return None
        return self._entry("hold", reservation_id, self._wall())

    def release(self, reservation_id: str) -> JournalEntry | None:
        if reservation_id in self.closed:
            if self.closed[reservation_id] != "released":
                raise LedgerError(f"reservation {reservation_id} was settled; it cannot be released")
            return None
        if reservation_id not in self.reservations:
            raise LedgerError(f"unknown reservation {reservation_id}")
        return self._entry("release", reservation_id, self._wall())

    def reconcile(self, release: bool) -> list[JournalEntry]:
        """Decide every unreconciled reservation: charge it at its reserved amount, or release it."""
        entries = []
        for rid, res in list(self.reservations.items()):
            if res.unreconciled:
                op = "release" if release else "settle"
                entry = self._entry(op, rid, self._wall(), 0 if release else res.amount_nd)
                entries.append(entry)
                self.apply(entry)
        return entries

    def reset(self) -> JournalEntry:
        return self._entry("reset", "", self._wall())

    def mark_outstanding_unreconciled(self) -> int:
        """After a restart: reservations whose calls died with the process count as spent."""
        for res in self.reservations.values():
            self._hold(res)
        return len(self.reservations)

    def _hold(self, res: Reservation) -> None:
        if not res.unreconciled:
            res.unreconciled = True
            for scope in res.scopes:
                self.held[scope] = self.held.get(scope, 0) + res.amount_nd

    def _unhold(self, res: Reservation) -> None:
        if res.unreconciled:
            for scope in res.scopes:
                self.held[scope] = self.held.get(scope, 0) - res.amount_nd

    def _entry(self, op: str, rid: str, at: float, amount: int = 0, request_id: str = "", tier: str = "",
               model: str = "", input_tokens: int = 0, output_tokens: int = 0) -> JournalEntry:
        return JournalEntry(self.seq + 1, op, rid, at, amount, request_id, tier, model, input_tokens, output_tokens)

    # -- the one mutator -------------------------------------------------------------------

    def apply(self, entry: JournalEntry) -> Applied:
        if entry.seq <= self.seq:
            return Applied("duplicate")
        self.seq = entry.seq
        self.operations += 1
        if entry.op == "reserve":
            scopes = self.scopes_for(entry.tier, entry.at, entry.generation, entry.purpose)
            self.reservations[entry.reservation_id] = Reservation(
                entry.request_id, entry.tier, entry.model, entry.amount_nd, scopes
            )
            for scope in scopes:
                self.reserved[scope] = self.reserved.get(scope, 0) + entry.amount_nd
            return Applied("reserved")
        if entry.op == "settle":
            res = self.reservations.pop(entry.reservation_id)
            self._unhold(res)
            for scope in res.scopes:
                self.reserved[scope] -= res.amount_nd
                self.settled[scope] = self.settled.get(scope, 0) + entry.amount_nd
            self._close(entry.reservation_id, "settled")
            self.settled_by_reservation[entry.reservation_id] = entry.amount_nd
            self._forget(self.settled_by_reservation)
            overrun = max(0, entry.amount_nd - res.amount_nd)
            self.overruns += overrun > 0
            return Applied("settled", overrun, self._crossings(res.scopes))
        if entry.op == "release":
            res = self.reservations.pop(entry.reservation_id)
            self._unhold(res)
            for scope in res.scopes:
                self.reserved[scope] -= res.amount_nd
            self._close(entry.reservation_id, "released")
            return Applied("released")
        if entry.op == "hold":
            self._hold(self.reservations[entry.reservation_id])
            return Applied("held")
        if entry.op == "reset":
            self._clear()
            return Applied("reset")
        raise LedgerError(f"journal entry {entry.seq} has unknown operation {entry.op!r}")

    def _close(self, reservation_id: str, how: str) -> None:
        self.closed[reservation_id] = how
        self._forget(self.closed)

    def _forget(self, remembered: OrderedDict[str, Any]) -> None:
        while len(remembered) > self.settings.closed_memory:
            remembered.popitem(last=False)

    def _crossings(self, scopes: tuple[str, ...]) -> tuple[Alert, ...]:
        alerts = []
        for scope in scopes:
            limit = self.limit_of(scope)
            if not limit or scope.startswith("gen:"):
                continue
            spent = self.settled.get(scope, 0)
            for threshold in self.settings.warning_thresholds:
                key = (scope, threshold)
                if key not in self.alerted and spent * 1_000_000 >= round(threshold * 1_000_000) * limit:
                    self.alerted.add(key)
                    alerts.append(Alert(scope, threshold, spent, limit))
        return tuple(alerts)

    # -- views -------------------------------------------------------------------------------

    def scopes_in_use(self) -> Iterator[str]:
        seen = {TOTAL}
        yield TOTAL
        for scope in sorted(set(self.settled) | set(self.reserved)):
            if scope not in seen and self.limit_of(scope) is not None:
                seen.add(scope)
                yield scope

    def _limit_status(self, scope: str) -> LimitStatus:
        """A scope's own settled and reserved money; a generation's limit is its allotment plus carry-over."""
        limit, settled, reserved, _ = self._usage(scope)
        own_settled, own_reserved = self.settled.get(scope, 0), self.reserved.get(scope, 0)
        limit = (limit or 0) - (settled - own_settled) - (reserved - own_reserved)
        return LimitStatus(scope, limit, own_settled, own_reserved, limit - own_settled - own_reserved)

    def status(self) -> BudgetStatus:
        unreconciled = sum(r.amount_nd for r in self.reservations.values() if r.unreconciled)
        limits = tuple(self._limit_status(scope) for scope in self.scopes_in_use())
        return BudgetStatus(
            limit_nd=self.settings.limit_nd,
            settled_nd=self.settled.get(TOTAL, 0),
            reserved_nd=self.reserved.get(TOTAL, 0),
            unreconciled_nd=unreconciled,
            remaining_nd=self.remaining(TOTAL),
            outstanding=len(self.reservations),
            overruns=self.overruns,
            operations=self.operations,
            limits=limits,
        )


def snapshot_of(core: LedgerCore) -> LedgerSnapshot:
    return LedgerSnapshot(
        seq=core.seq,
        operations=core.operations,
        overruns=core.overruns,
        reservations=tuple(
            SnapshotReservation(rid, r.request_id, r.tier, r.model, r.amount_nd, r.scopes, r.unreconciled)
            for rid, r in core.reservations.items()
        ),
        closed=dict(core.closed),
        settled=dict(core.settled),
        reserved=dict(core.reserved),
        settled_by_reservation=dict(core.settled_by_reservation),
        alerted=tuple(sorted(core.alerted)),
    )


def restore(core: LedgerCore, snap: LedgerSnapshot) -> None:
    core.seq = snap.seq
    core.operations = snap.operations
    core.overruns = snap.overruns
    core.held = {}
    core.reservations = {}
    for r in snap.reservations:
        core.reservations[r.reservation_id] = res = Reservation(r.request_id, r.tier, r.model, r.amount_nd, r.scopes)
        if r.unreconciled:
            core._hold(res)
    core.closed = OrderedDict(snap.closed)
    core.settled = dict(snap.settled)
    core.reserved = dict(snap.reserved)
    core.settled_by_reservation = OrderedDict(snap.settled_by_reservation)
    core.alerted = set(snap.alerted)

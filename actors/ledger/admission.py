"""The budget queue: reservations that wait for reserved money instead of being refused.

Worst-case reservation keeps the budget safe, but in-flight requests hold far more
than they will settle for (most settle well below their worst case). A reservation
that does not fit *only* because of that reserved money is not refused: it waits
here, first in, first out, until settlements free enough, or until its wait runs out
(the request's deadline, bounded by `budget.wait_s`). Money that is truly gone
(settled plus held plus the worst case past the limit) is refused at once by the
core; waiting could not help it.

First in, first out is the rule against starvation: while anyone waits, a new
reservation queues behind them even if it would fit now, so a large request is never
overtaken forever by small ones. Its cost is that a small request may wait behind a
large one that is itself waiting; both are bounded by their wait.

Sans-I/O: the ledger actors own the clock, the replies and the storage; this class
only keeps the order, the deadlines and the counts shown by `/metrics`.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from actors.ledger.core import Decision
from actors.ledger.messages import BudgetStatus, Reserve, ReserveReply


@attrs.define
class Waiter:
    corr: int
    reserve: Reserve
    since: float
    until: float


@attrs.frozen
class QueueStats:
    waiting: int
    waiting_nd: int
    waited: int
    """Reservations that have entered the queue since the ledger started."""
    expired: int
    wait_s_total: float

    def onto(self, status: BudgetStatus) -> BudgetStatus:
        """The ledger's status with the queue's figures."""
        return attrs.evolve(status, waiting=self.waiting, waiting_nd=self.waiting_nd, waited=self.waited,
                            wait_expired=self.expired, wait_s_total=self.wait_s_total)


def reply_to(msg: Reserve, decision: Decision, waited_s: float = 0.0) -> ReserveReply:
    return ReserveReply(msg.reservation_id, decision.granted, decision.remaining_nd, decision.reason, waited_s,
                        decision.waitable)


def refusal(waiter: Waiter, now: float, why: str, remaining_nd: int = 0) -> ReserveReply:
    """The answer to a waiter that leaves the queue without money: its wait ran out, its asker left, a stop."""
    waited = now - waiter.since
    return ReserveReply(waiter.reserve.reservation_id, False, remaining_nd,
                        f"waited {waited:.1f}s for reserved money ({why})", waited, True)


class AdmissionQueue:
    """Waiting reservations in arrival order, by reservation id."""

    def __init__(self) -> None:
        self._waiters: OrderedDict[str, Waiter] = OrderedDict()
        self._waited = 0
        self._expired = 0
        self._wait_s_total = 0.0

    def __len__(self) -> int:
        return len(self._waiters)

    def __contains__(self, reservation_id: object) -> bool:
        return reservation_id in self._waiters

    def push(self, corr: int, reserve: Reserve, now: float) -> None:
        self._waiters[reserve.reservation_id] = Waiter(corr, reserve, now, now + reserve.wait_s)
        self._waited += 1

    def head(self) -> Waiter | None:
        return next(iter(self._waiters.values()), None)

    def admitted(self, now: float) -> Waiter:
        """Take the head off the queue: it was granted (or its money is gone)."""
        waiter = next(iter(self._waiters.values()))
        self.take(waiter.reserve.reservation_id, now)
        return waiter

    def take(self, reservation_id: str, now: float) -> float:
        """Take a decided waiter off the queue; returns when it began to wait."""
        waiter = self._waiters.pop(reservation_id)
        self._wait_s_total += now - waiter.since
        return waiter.since

    def withdraw(self, reservation_id: str, now: float) -> Waiter | None:
        """Take a waiter whose asker gave up (its release came before any grant)."""
        waiter = self._waiters.pop(reservation_id, None)
        if waiter is not None:
            self._wait_s_total += now - waiter.since
        return waiter

    def expire(self, now: float) -> list[Waiter]:
        """Take every waiter whose wait has run out, wherever it stands in the queue."""
        gone = [w for w in self._waiters.values() if w.until <= now]
        for waiter in gone:
            del self._waiters[waiter.reserve.reservation_id]
            self._expired += 1
            self._wait_s_total += now - waiter.since
        return gone

    def next_deadline(self) -> float | None:
        return min((w.until for w in self._waiters.values()), default=None)

    def waiters(self) -> list[Waiter]:
        return list(self._waiters.values())

    def stats(self) -> QueueStats:
        return QueueStats(
            waiting=len(self._waiters),
            waiting_nd=sum(w.reserve.amount_nd for w in self._waiters.values()),
            waited=self._waited,
            expired=self._expired,
            wait_s_total=self._wait_s_total,
        )

"""What the router (and the CLI) say to the ledger, and what it journals."""

from __future__ import annotations

from actors.codec import message


@message(100)
class Reserve:
    reservation_id: str
    request_id: str
    tier: str
    model: str
    amount_nd: int
    wait_s: float = 0.0
    """How long the asker will wait in the budget queue for reserved money to settle (0: decide now)."""
    generation: int = -1
    """The GA generation the request belongs to (-1: none), for pacing's allotments."""
    purpose: str = ""
    """seeding, mutation or escalation (pacing's purpose scopes); empty when none applies."""


@message(101)
class ReserveReply:
    reservation_id: str
    granted: bool
    remaining_nd: int
    reason: str = ""
    waited_s: float = 0.0
    """Time spent in the budget queue before this answer."""
    waitable: bool = False
    """Denied only because of money in-flight reservations hold (it would fit once they settle)."""


@message(102)
class Settle:
    reservation_id: str
    actual_nd: int
    input_tokens: int = 0
    output_tokens: int = 0


@message(103)
class Release:
    reservation_id: str


@message(104)
class LedgerAck:
    """`outcome`: settled, released, held, duplicate (an idempotent repeat)."""

    reservation_id: str
    outcome: str
    overrun_nd: int = 0


@message(105)
class StatusQuery:
    pass


@message(106)
class LimitStatus:
    """One limit (total, a day, a month, a tier) and how much of it is used."""

    scope: str
    limit_nd: int
    settled_nd: int
    reserved_nd: int
    remaining_nd: int


@message(107)
class BudgetStatus:
    limit_nd: int
    settled_nd: int
    reserved_nd: int
    unreconciled_nd: int
    remaining_nd: int
    outstanding: int
    overruns: int
    operations: int
    limits: tuple[LimitStatus, ...] = ()
    waiting: int = 0
    """Reservations in the budget queue now (this process's, for a shared ledger)."""
    waiting_nd: int = 0
    waited: int = 0
    wait_expired: int = 0
    wait_s_total: float = 0.0
    journal_writes_on_loop: int = 0
    """Journal writes (each a write and its fsync) made on the event loop, the disk having proved fast; 0 without a
    journal of this process's (memory, PostgreSQL)."""
    journal_writes_in_thread: int = 0
    journal_slow_writes: int = 0
    """Writes on the loop that took `budget.journal_inline_ms` or longer (two among the last 16 send writes to the
    thread for a while)."""
    journal_loop_s_total: float = 0.0


@message(108)
class Reconcile:
    """Decide reservations left outstanding by a crash: charge them in full, or release them."""

    release: bool = False


@message(109)
class ResetLedger:
    pass


@message(110)
class Hold:
    """Keep a reservation counted as spent until reconciled: its call's outcome cannot be known."""

    reservation_id: str


@message(120)
class JournalEntry:
    """One durable operation. Replaying the entries in order rebuilds the ledger exactly."""

    seq: int
    op: str
    reservation_id: str
    at: float
    amount_nd: int = 0
    request_id: str = ""
    tier: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    generation: int = -1
    purpose: str = ""


MESSAGES: tuple[type, ...] = (
    Reserve,
    ReserveReply,
    Settle,
    Release,
    LedgerAck,
    StatusQuery,
    LimitStatus,
    BudgetStatus,
    Reconcile,
    ResetLedger,
    Hold,
    JournalEntry,
)


@message(121)
class SnapshotReservation:
    reservation_id: str
    request_id: str
    tier: str
    model: str
    amount_nd: int
    scopes: tuple[str, ...]
    unreconciled: bool


@message(122)
class LedgerSnapshot:
    """The whole ledger at journal sequence `seq`; entries up to `seq` are inside it."""

    seq: int
    operations: int
    overruns: int
    reservations: tuple[SnapshotReservation, ...]
    closed: dict[str, str]
    settled: dict[str, int]
    reserved: dict[str, int]
    settled_by_reservation: dict[str, int]
    alerted: tuple[tuple[str, float], ...]


@message(123)
class UnsentClosings:
    """Settles, releases and holds the shared ledger did not hear before this process stopped.

    Each is one codec-encoded `Settle`, `Release` or `Hold`; the next process on the
    same state directory sends them again (idempotent by reservation id).
    """

    closings: tuple[bytes, ...]


MESSAGES = MESSAGES + (SnapshotReservation, LedgerSnapshot, UnsentClosings)

"""Telemetry events: what the log records, one message class per kind of event.

A request's own steps are written as one `RequestServed` when it ends and read back
as the per-step events below (`expand`); fallbacks, circuit changes, budget alerts
and feedback are written as they happen.

Every event carries `at`, wall-clock unix seconds, because summaries group by hour,
day and month of real time. Events reuse the engine's messages (Request, Decision,
Attempt, Result), so the log holds everything needed to audit, re-route and re-serve
a run. None of them has a field for credentials: nothing secret can be logged.
"""

from __future__ import annotations

from actors.codec import message
from actors.messages import Attempt, Decision, Request, Result


@message(250)
class RequestReceived:
    at: float
    request: Request


@message(251)
class RoutingDecided:
    at: float
    request_id: str
    decision: Decision


@message(252)
class CacheChecked:
    at: float
    request_id: str
    hit: bool
    similarity: float | None = None
    saved_nd: int = 0


@message(253)
class ReservationDecided:
    at: float
    request_id: str
    reservation_id: str
    tier: str
    model: str
    granted: bool
    amount_nd: int
    remaining_nd: int
    waited_s: float = 0.0
    """Time the reservation waited in the budget queue for reserved money to settle."""
    generation: int = -1
    """The GA generation the money was booked under when the budget is paced (-1: none or not paced)."""
    purpose: str = ""


@message(254)
class AttemptStarted:
    at: float
    request_id: str
    attempt_no: int
    provider: str
    model: str
    tier: str


@message(255)
class AttemptFinished:
    at: float
    request_id: str
    attempt_no: int
    attempt: Attempt


@message(256)
class FallbackTaken:
    at: float
    request_id: str
    from_provider: str
    to_provider: str
    reason: str


@message(257)
class CircuitChanged:
    at: float
    provider: str
    old: str
    new: str
    reason: str


@message(258)
class BudgetAlert:
    at: float
    period: str
    threshold: float
    spent_nd: int
    limit_nd: int


@message(259)
class ResultRecorded:
    """The end of a request: its Result, or the error code it failed with."""

    at: float
    request_id: str
    task_kind: str
    result: Result | None
    error_code: str = ""
    error: str = ""


@message(260)
class FeedbackGiven:
    """A caller's score for what it got (a GA's fitness of the program)."""

    at: float
    request_id: str
    score: float


@message(261)
class TelemetryShed:
    """The collector's buffer overflowed; `count` events were dropped since the last report."""

    at: float
    count: int


@message(262)
class LedgerOverrun:
    at: float
    reservation_id: str
    reserved_nd: int
    actual_nd: int


@message(264)
class RequestServed:
    """A request from arrival to end in one record, written when it ends.

    It carries what RequestReceived, RoutingDecided, CacheChecked, ReservationDecided,
    AttemptStarted, AttemptFinished and ResultRecorded carried, once each: one encode
    and one write per request instead of seven, and the decision and the attempts
    stored once instead of twice (docs/BENCHMARKS.md). Readers see those seven events
    (`expand`), so logs written before and after read the same way. `decision` is None
    for a request refused before routing and for one whose result carries the same
    decision (logs written before that have it in both), `cache_hit` None when the cache
    was not consulted, `attempts` those of a request without a result (a result carries its
    own), and `ended` False for a request its caller cancelled (no ResultRecorded, as
    before).
    """

    at: float
    received_at: float
    request: Request
    decision: Decision | None = None
    cache_hit: bool | None = None
    reservations: tuple[ReservationDecided, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    result: Result | None = None
    error_code: str = ""
    error: str = ""
    ended: bool = True


def expand(served: RequestServed) -> list[object]:
    """The per-step events a RequestServed stands for, in the order they happened.

    Reservations keep their own time; the other steps carry the request's arrival
    time, except AttemptFinished and ResultRecorded, which carry its end time.
    """
    request_id = served.request.request_id
    start, end = served.received_at, served.at
    result = served.result
    events: list[object] = [RequestReceived(start, served.request)]
    decision = served.decision if served.decision is not None or result is None else result.decision
    if decision is not None:
        events.append(RoutingDecided(start, request_id, decision))
    if served.cache_hit is not None:
        hit = served.cache_hit
        events.append(CacheChecked(start, request_id, hit, result.similarity if hit and result else None,
                                   result.saved_nd if hit and result else 0))
    events.extend(served.reservations)
    attempts = served.attempts if result is None else result.attempts
    for number, attempt in enumerate(attempts, 1):
        events.append(AttemptStarted(start, request_id, number, attempt.provider, attempt.model, attempt.tier))
        events.append(AttemptFinished(end, request_id, number, attempt))
    if served.ended:
        events.append(ResultRecorded(end, request_id, served.request.kind, result, served.error_code, served.error))
    return events


DERIVED: frozenset[type] = frozenset(
    {RequestReceived, RoutingDecided, CacheChecked, ReservationDecided, AttemptStarted, AttemptFinished, ResultRecorded}
)
"""The event kinds a RequestServed stands for."""


MESSAGES: tuple[type, ...] = (
    RequestReceived,
    RoutingDecided,
    CacheChecked,
    ReservationDecided,
    AttemptStarted,
    AttemptFinished,
    FallbackTaken,
    CircuitChanged,
    BudgetAlert,
    ResultRecorded,
    FeedbackGiven,
    TelemetryShed,
    LedgerOverrun,
    RequestServed,
)


@message(270)
class SegmentHeader:
    """The first record of every log segment."""

    schema: int
    fingerprint: str
    started_at: float
    segment: int


@message(271)
class FlushTelemetry:
    """Ask the collector to write out everything it holds (answered with the same message)."""


MESSAGES = MESSAGES + (SegmentHeader, FlushTelemetry)

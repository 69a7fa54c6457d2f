"""Telemetry events: what the log records, one message class per kind of event.

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

"""Audit: re-derive the money from the telemetry log and check it against the ledger.

Every attempt that reached a provider had its own reservation (`<request id>/<n>`).
The log says what each attempt cost; the ledger's journal says what each reservation
settled at. They must agree to the nanodollar, in both directions: an attempt the
ledger never settled, a settlement the log never mentions, or a different amount is
a finding, reported with the reservation id. So is a result whose cost is not the
sum of its attempts. A reservation held on an unknown outcome is accounted for by the
attempt that held it, whether its request then succeeded or failed (a failed
request's result carries no attempts, so held ones are read from AttemptFinished).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from actors.telemetry.events import AttemptFinished, ReservationDecided, ResultRecorded
from actors.telemetry.log import LogReader


@attrs.frozen
class AuditReport:
    requests: int
    results_cost_nd: int
    attempts_cost_nd: int
    ledger_settled_nd: int
    findings: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def audit(log_dir: str | Path, settled_by_reservation: Mapping[str, int], closed: Mapping[str, str]) -> AuditReport:
    reader = LogReader(Path(log_dir))
    findings: list[str] = []
    attempts: dict[str, int] = {}
    granted: set[str] = set()
    held: set[str] = set()
    results_cost = 0
    requests = 0
    for event in reader.events_of(ResultRecorded, ReservationDecided, AttemptFinished):
        if isinstance(event, ReservationDecided):
            if event.granted:
                granted.add(event.reservation_id)
            continue
        if isinstance(event, AttemptFinished):
            if event.attempt.held_nd and event.attempt.reservation_id:
                held.add(event.attempt.reservation_id)
            continue
        requests += 1
        result = event.result
        if result is None:
            continue
        results_cost += result.cost_nd
        if not result.cached and result.cost_nd != sum(a.cost_nd for a in result.attempts):
            findings.append(
                f"request {result.request_id}: result cost {result.cost_nd} nd is not the sum of its attempts"
            )
        for number, attempt in enumerate(result.attempts, 1):
            rid = attempt.reservation_id or f"{result.request_id}/{number}"
            if attempt.outcome == "ok":
                attempts[rid] = attempt.cost_nd
            elif attempt.held_nd:
                held.add(rid)
                if closed.get(rid) == "released" and rid not in granted:
                    findings.append(f"reservation {rid}: held as unknown, but the ledger never granted it")
            elif closed.get(rid) != "released":
                findings.append(f"reservation {rid}: the attempt failed ({attempt.outcome}) but the ledger did not release it")
    for rid, cost in attempts.items():
        if rid not in settled_by_reservation:
            findings.append(f"reservation {rid}: the log says it cost {cost} nd, the ledger never settled it")
        elif settled_by_reservation[rid] != cost:
            findings.append(
                f"reservation {rid}: the log says {cost} nd, the ledger settled {settled_by_reservation[rid]} nd"
            )
    for rid in granted:
        if rid in settled_by_reservation and rid not in attempts and settled_by_reservation[rid]:
            findings.append(f"reservation {rid}: the ledger settled {settled_by_reservation[rid]} nd the log has no result for")
        if rid not in closed and rid not in settled_by_reservation and rid not in held:
            findings.append(f"reservation {rid}: still outstanding in the ledger")
    settled_total = sum(settled_by_reservation.values())
    if requests == 0 and settled_total:
        findings.append(
            f"the log holds no results while the ledger settled {settled_total} nd: the log is empty, "
            "truncated or not this ledger's"
        )
    logged = set(attempts) | held
    unlogged = [rid for rid, cost in settled_by_reservation.items() if cost and rid not in logged and rid not in granted]
    if unlogged and requests:
        findings.append(
            f"the ledger settled {len(unlogged)} reservation(s) the log never mentions "
            f"({sum(settled_by_reservation[r] for r in unlogged)} nd): part of the log is missing"
        )
    return AuditReport(
        requests=requests,
        results_cost_nd=results_cost,
        attempts_cost_nd=sum(attempts.values()),
        ledger_settled_nd=sum(settled_by_reservation.values()),
        findings=tuple(findings),
        problems=tuple(f"{p.segment} @ {p.offset}: {p.what}" for p in reader.problems),
    )

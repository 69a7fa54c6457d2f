"""Comparing the arms of an A/B test from the telemetry log: requests, cost, feedback, and the difference.

Per arm: the requests its routing decided, what their answers cost, and the mean of
the feedback scores the caller gave (`orch.feedback`, a GA's fitness) with a 95%
interval (normal approximation: mean ± 1.96 standard errors). Each arm is compared
with the arm of the highest mean score: the difference of means and its 95% interval
(Welch's standard error). The stopping rule: an arm whose interval for the difference
lies wholly below zero is clearly worse and may be stopped (give it `weight: 0`); an
interval that contains zero says the log cannot tell the arms apart yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import attrs

from actors.money import format_usd
from actors.telemetry.events import FeedbackGiven, ResultRecorded, RoutingDecided
from actors.telemetry.log import LogReader

Z_95 = 1.959964


@attrs.frozen
class ArmFigures:
    arm: str
    requests: int
    cost_nd: int
    scored: int
    mean_score: float | None
    interval: tuple[float, float] | None
    difference: float | None = None
    """Mean score minus the best arm's."""
    difference_interval: tuple[float, float] | None = None

    @property
    def clearly_worse(self) -> bool:
        return self.difference_interval is not None and self.difference_interval[1] < 0


TABLE_HEADERS = ("arm", "requests", "cost", "per request", "scored", "mean score", "95% interval", "vs best (95%)", "")


def table_row(figures: ArmFigures) -> tuple[str, ...]:
    """One arm as `stats --by arm` and the report show it, under `TABLE_HEADERS`."""
    f = figures
    versus_best = (
        "best" if f.difference is None and f.mean_score is not None
        else "-" if f.difference is None else f"{f.difference:+.3f} {_shown(f.difference_interval)}"
    )
    return (f.arm or "(no experiment)", str(f.requests), format_usd(f.cost_nd, 6),
            format_usd(f.cost_nd // max(f.requests, 1), 6), str(f.scored),
            "-" if f.mean_score is None else f"{f.mean_score:.3f}", _shown(f.interval), versus_best,
            "clearly worse: may be stopped" if f.clearly_worse else "")


def _shown(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"


def compare(log_dir: str | Path) -> list[ArmFigures]:
    arm_of: dict[str, str] = {}
    spent: list[tuple[str, int]] = []
    given: list[tuple[str, float]] = []
    for event in LogReader(Path(log_dir)).events_of(RoutingDecided, ResultRecorded, FeedbackGiven):
        if isinstance(event, RoutingDecided):
            arm_of.setdefault(event.request_id, event.decision.arm)
        elif isinstance(event, ResultRecorded):
            if event.result is not None:
                spent.append((event.request_id, event.result.cost_nd))
        else:
            given.append((event.request_id, event.score))
    cost: dict[str, int] = defaultdict(int)
    scores: dict[str, list[float]] = defaultdict(list)
    for request_id, nanodollars in spent:
        if request_id in arm_of:
            cost[arm_of[request_id]] += nanodollars
    for request_id, score in given:  # feedback may be logged before the request's own record
        if request_id in arm_of:
            scores[arm_of[request_id]].append(score)
    requests: dict[str, int] = defaultdict(int)
    for arm in arm_of.values():
        requests[arm] += 1
    figures = [_figures(arm, requests[arm], cost[arm], scores[arm]) for arm in sorted(requests)]
    rated = [f for f in figures if f.mean_score is not None]
    if not rated:
        return figures
    best = max(rated, key=lambda f: f.mean_score or 0.0)
    return [_against(f, best, scores) for f in figures]


def _figures(arm: str, requests: int, cost_nd: int, values: list[float]) -> ArmFigures:
    if not values:
        return ArmFigures(arm, requests, cost_nd, 0, None, None)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return ArmFigures(arm, requests, cost_nd, 1, mean, None)
    half = Z_95 * _standard_error(values)
    return ArmFigures(arm, requests, cost_nd, len(values), mean, (mean - half, mean + half))


def _against(arm: ArmFigures, best: ArmFigures, scores: dict[str, list[float]]) -> ArmFigures:
    if arm.interval is None or best.interval is None or arm.mean_score is None or best.mean_score is None \
            or arm.arm == best.arm:
        return arm
    difference = arm.mean_score - best.mean_score
    half = Z_95 * math.hypot(_standard_error(scores[arm.arm]), _standard_error(scores[best.arm]))
    return attrs.evolve(arm, difference=difference, difference_interval=(difference - half, difference + half))


def _standard_error(values: list[float]) -> float:
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance / len(values))

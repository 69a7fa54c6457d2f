"""Summaries of a telemetry log: where the money went, by period and by model, tier,
task type or provider.

Only the events a summary needs are decoded (results, feedback, shed counts); the
rest are skipped by their tag, which is what keeps reading fast on large logs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

from actors.telemetry.events import FeedbackGiven, ResultRecorded, TelemetryShed
from actors.telemetry.log import LogReader

PERIODS = ("hour", "day", "week", "month", "all")
GROUPS = ("model", "tier", "task_type", "provider")


def period_start(at: float, period: str) -> str:
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    if period == "hour":
        return moment.strftime("%Y-%m-%d %H:00")
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        return (moment - timedelta(days=moment.weekday())).strftime("week of %Y-%m-%d")
    if period == "month":
        return moment.strftime("%Y-%m")
    return "all"


@attrs.define
class Group:
    requests: int = 0
    succeeded: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nd: int = 0
    cached: int = 0
    saved_nd: int = 0
    fallbacks: int = 0
    latencies: list[float] = attrs.Factory(list)
    models: Counter[str] = attrs.Factory(Counter)
    model_cost: Counter[str] = attrs.Factory(Counter)
    errors: Counter[str] = attrs.Factory(Counter)
    failures: Counter[str] = attrs.Factory(Counter)
    scores: list[float] = attrs.Factory(list)

    def add(self, event: ResultRecorded) -> None:
        self.requests += 1
        result = event.result
        if result is None:
            self.errors[event.error_code] += 1
            return
        self.succeeded += 1
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        self.cost_nd += result.cost_nd
        self.cached += result.cached
        self.saved_nd += result.saved_nd
        self.fallbacks += result.fallbacks > 0
        self.latencies.append(result.latency_s)
        self.models[result.model] += 1
        self.model_cost[result.model] += result.cost_nd
        for attempt in result.attempts:
            if attempt.outcome != "ok":
                self.failures[attempt.outcome] += 1

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def row(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "success_rate": self.succeeded / self.requests if self.requests else 0.0,
            "fallback_rate": self.fallbacks / self.succeeded if self.succeeded else 0.0,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_nd": self.cost_nd,
            "avg_cost_nd": self.cost_nd // self.succeeded if self.succeeded else 0,
            "cache_hits": self.cached,
            "saved_nd": self.saved_nd,
            "latency_p50_ms": round(self.percentile(0.50) * 1000, 2),
            "latency_p95_ms": round(self.percentile(0.95) * 1000, 2),
            "latency_p99_ms": round(self.percentile(0.99) * 1000, 2),
            "most_used_model": self.models.most_common(1)[0][0] if self.models else "",
            "most_expensive_model": self.model_cost.most_common(1)[0][0] if self.model_cost else "",
            "errors": dict(self.errors),
            "failed_attempts": dict(self.failures),
            "mean_feedback": sum(self.scores) / len(self.scores) if self.scores else None,
        }


@attrs.define
class Summary:
    period: str
    by: str
    groups: dict[tuple[str, str], Group] = attrs.Factory(dict)
    total: Group = attrs.Factory(Group)
    shed: int = 0
    records: int = 0
    problems: list[str] = attrs.Factory(list)

    def rows(self) -> list[dict[str, object]]:
        return [{"period": p, self.by: k, **g.row()} for (p, k), g in sorted(self.groups.items())]


def _group_key(event: ResultRecorded, by: str) -> str:
    result = event.result
    if by == "task_type":
        return event.task_kind
    if result is None:
        return f"(failed: {event.error_code})"
    return {"model": result.model, "tier": result.tier, "provider": result.provider}[by]


def summarize(log_dir: str | Path, period: str = "all", by: str = "tier", since: float | None = None) -> Summary:
    reader = LogReader(Path(log_dir))
    summary = Summary(period, by)
    key_of: dict[str, tuple[str, str]] = {}
    pending_feedback: list[FeedbackGiven] = []
    for event in reader.events_of(ResultRecorded, FeedbackGiven, TelemetryShed, trusted=True):
        if isinstance(event, ResultRecorded):
            if since is not None and event.at < since:
                continue
            key = (period_start(event.at, period), _group_key(event, by))
            summary.groups.setdefault(key, Group()).add(event)
            summary.total.add(event)
            key_of[event.request_id] = key
        elif isinstance(event, FeedbackGiven):
            pending_feedback.append(event)
        elif isinstance(event, TelemetryShed):
            summary.shed += event.count
    for feedback in pending_feedback:
        key = key_of.get(feedback.request_id)
        if key is not None:
            summary.groups[key].scores.append(feedback.score)
            summary.total.scores.append(feedback.score)
    summary.records = reader.records
    summary.problems = [f"{p.segment} @ {p.offset}: {p.what}" for p in reader.problems]
    return summary


def results(log_dir: str | Path) -> Iterable[ResultRecorded]:
    """Every ResultRecorded event of a log, in order."""
    return LogReader(Path(log_dir)).events_of(ResultRecorded)

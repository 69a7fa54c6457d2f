"""A telemetry log as an outcome table: a user's own history becomes training data.

A request counts when the log holds its prompt (RequestReceived), its result
(ResultRecorded: which model answered, the text, the cost) and a score for it
(FeedbackGiven, the last one if several). The row is the prompt; the answering model's
column gets the score, its response and its cost (left out for cache hits, which cost
nothing and say nothing about the model's price). The same prompt answered by several
models, or several times, merges into one row (`outcomes.build_table`).

Feedback scores are used as they are when they lie in [0, 1]; a GA's fitness on another
scale needs `success_at`: a score at or above it counts as success (1), below as 0.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.policy.learned import request_text
from actors.telemetry.events import FeedbackGiven, RequestReceived, ResultRecorded
from actors.telemetry.log import LogReader
from orchestrator.lab.outcomes import COST_SUFFIX, RESPONSE_SUFFIX, OutcomeTable, OutcomeTableError, build_table


def table_from_telemetry(log_dir: str | Path, success_at: float | None = None) -> tuple[OutcomeTable, list[str]]:
    """(table, problems): the log's scored requests, and what was skipped in reading it."""
    prompts: dict[str, str] = {}
    results: dict[str, Any] = {}
    scores: dict[str, float] = {}
    reader = LogReader(Path(log_dir))
    if not reader.segments():
        raise OutcomeTableError(f"{log_dir}: no telemetry segments found")
    for event in reader.events_of(RequestReceived, ResultRecorded, FeedbackGiven):
        if isinstance(event, RequestReceived):
            prompts[event.request.request_id] = request_text(event.request)
        elif isinstance(event, ResultRecorded):
            if event.result is not None:
                results[event.request_id] = event.result
        else:
            scores[event.request_id] = event.score
    records = []
    for request_id, score in scores.items():
        result = results.get(request_id)
        prompt = prompts.get(request_id)
        if result is None or not prompt:
            continue
        if success_at is not None:
            score = 1.0 if score >= success_at else 0.0
        elif not 0.0 <= score <= 1.0:
            raise OutcomeTableError(
                f"{log_dir}: request {request_id} has feedback score {score:g}, outside [0, 1]; "
                "give a success threshold (--success-at) to turn scores into outcomes"
            )
        record: dict[str, Any] = {"prompt": prompt, result.model: score, result.model + RESPONSE_SUFFIX: result.text}
        if not result.cached and not result.replayed:
            record[result.model + COST_SUFFIX] = str(Decimal(result.cost_nd).scaleb(-9))
        records.append(record)
    if not records:
        raise OutcomeTableError(f"{log_dir}: no request has a prompt, a result and a feedback score")
    return build_table(records, str(log_dir)), [p.what for p in reader.problems]

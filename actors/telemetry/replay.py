"""The recorded answers of a log, by cache key, for a deterministic re-run.

A GA run re-executed against this index gets, for every identical request (same
model, messages, sampling parameters and sample index), the very text it got the
first time: no network, no cost.
"""

from __future__ import annotations

from pathlib import Path

from actors.messages import Result
from actors.telemetry.summary import results


def recorded_answers(log_dir: str | Path) -> dict[str, Result]:
    answers: dict[str, Result] = {}
    for event in results(log_dir):
        result = event.result
        if result is not None and result.cache_key and not result.replayed:
            answers.setdefault(result.cache_key, result)
    return answers

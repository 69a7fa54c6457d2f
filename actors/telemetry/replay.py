"""The recorded answers of a log, by cache key, for a deterministic re-run.

A GA run re-executed against this index gets, for every identical request (same
model, messages, sampling parameters and sample index), the very text it got the
first time: no network, no cost.
"""

from __future__ import annotations

from pathlib import Path

from actors.errors import InvalidRequest
from actors.messages import Request, Result
from actors.telemetry.events import RequestReceived
from actors.telemetry.log import LogReader
from actors.telemetry.summary import results


def recorded_answers(log_dir: str | Path) -> dict[str, Result]:
    answers: dict[str, Result] = {}
    for event in results(log_dir):
        result = event.result
        if result is not None and result.cache_key and not result.replayed:
            answers.setdefault(result.cache_key, result)
    return answers


def recorded_requests(log_dir: str | Path) -> list[Request]:
    """The workload a log recorded, in the order it arrived (each request id once).

    A request is written when it ends, so the log's order is the order of ending;
    its arrival time puts it back in place.
    """
    if not Path(log_dir).is_dir():
        raise InvalidRequest(f"{log_dir}: no telemetry log there (a run writes one under STATE_DIR/telemetry)")
    seen: set[str] = set()
    requests = []
    for event in sorted(LogReader(Path(log_dir)).events_of(RequestReceived), key=lambda event: event.at):
        if event.request.request_id not in seen:
            seen.add(event.request.request_id)
            requests.append(event.request)
    return requests

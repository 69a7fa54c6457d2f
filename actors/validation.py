"""The one check every request passes: types and ranges of every field, with the allowed range.

`Request` runs it on construction, so the Python API, JSONL workloads, the HTTP server
and the CLI all refuse the same inputs with the same `InvalidRequest`, naming the
field, the value and what is allowed. A request that reaches the router is one the
ledger can price: no negative or absurd token counts, no temperatures off the scale.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from actors.errors import InvalidRequest


class _Message(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


class _Task(Protocol):
    @property
    def task_id(self) -> str: ...


class CheckedRequest(Protocol):
    """The fields of a `Request` this module checks (a protocol, so that it need not import messages)."""

    @property
    def request_id(self) -> str: ...

    @property
    def max_tokens(self) -> int | None: ...

    @property
    def temperature(self) -> float | None: ...

    @property
    def top_p(self) -> float | None: ...

    @property
    def sample_index(self) -> int | None: ...

    @property
    def stagnation(self) -> int: ...

    @property
    def cache_ttl_s(self) -> float | None: ...

    @property
    def deadline_s(self) -> float | None: ...

    @property
    def attempt_timeout_s(self) -> float | None: ...

    @property
    def score(self) -> float | None: ...

    @property
    def stop(self) -> tuple[str, ...]: ...

    @property
    def metadata(self) -> dict[str, str]: ...

    @property
    def features(self) -> dict[str, float] | None: ...

    @property
    def messages(self) -> Sequence[_Message]: ...

    @property
    def task(self) -> _Task | None: ...

    @property
    def task_kind(self) -> str: ...

    @property
    def tier(self) -> str | None: ...

    @property
    def model(self) -> str | None: ...

MAX_TOKENS = 1_000_000
"""Above any model's output limit: a larger value is a typo, not a request."""
MAX_PROMPT_BYTES = 8 * 1024 * 1024
"""Larger than the largest context window (about 2M tokens) can hold."""
MAX_STOP_SEQUENCES = 16
MAX_REQUEST_ID = 256
MAX_DEADLINE_S = 86_400.0
MAX_FEATURES = 256
MAX_METADATA_BYTES = 64 * 1024
"""Labels (a task id, a purpose, a generation), not payload: a request's metadata is in every record of it."""
ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


def validate_request(request: CheckedRequest) -> None:
    """Raise InvalidRequest naming the first field that is out of its range."""
    rid = request.request_id
    where = f"request {rid!r}" if isinstance(rid, str) else "request"
    _request_id(where, rid)
    for field, text in (("task_kind", request.task_kind), ("tier", request.tier), ("model", request.model),
                        ("task.task_id", getattr(request.task, "task_id", None))):
        if isinstance(text, str):
            _utf8(where, field, text)
    _integer(where, "max_tokens", request.max_tokens, 1, MAX_TOKENS, optional=True)
    _number(where, "temperature", request.temperature, 0.0, 2.0, optional=True)
    _number(where, "top_p", request.top_p, 0.0, 1.0, optional=True, low_open=True)
    _integer(where, "sample_index", request.sample_index, 0, 2**31 - 1, optional=True)
    _integer(where, "stagnation", request.stagnation, 0, 2**31 - 1)
    _number(where, "cache_ttl_s", request.cache_ttl_s, 0.0, math.inf, optional=True, low_open=True)
    _number(where, "deadline_s", request.deadline_s, 0.0, MAX_DEADLINE_S, optional=True, low_open=True)
    _number(where, "attempt_timeout_s", request.attempt_timeout_s, 0.0, MAX_DEADLINE_S, optional=True, low_open=True)
    _number(where, "score", request.score, 0.0, 1.0, optional=True)
    if not isinstance(request.stop, tuple) or len(request.stop) > MAX_STOP_SEQUENCES or not all(
        isinstance(s, str) and s for s in request.stop
    ):
        raise InvalidRequest(f"{where}: stop must be at most {MAX_STOP_SEQUENCES} non-empty strings, got {request.stop!r:.80}")
    for index, stop in enumerate(request.stop):
        _utf8(where, f"stop[{index}]", stop)
    _strings(where, "metadata", request.metadata)
    size = 0
    for key, value in request.metadata.items():
        size += len(_utf8(where, "metadata key", key)) + len(_utf8(where, f"metadata[{key!r}]", value))
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(f"{where}: metadata is {size:,} bytes of keys and values; at most {MAX_METADATA_BYTES:,} "
                             f"(it is written with every telemetry record of the request)")
    generation = request.metadata.get("generation")
    if generation is not None and not (generation.isascii() and generation.isdigit() and len(generation) <= 9):
        raise InvalidRequest(
            f"{where}: metadata.generation must be a whole number of at most 9 digits (the GA generation pacing "
            f"books it under), got {generation!r}"
        )
    if request.features is not None:
        if not isinstance(request.features, Mapping) or not all(
            isinstance(k, str) and _finite(v) for k, v in request.features.items()
        ):
            raise InvalidRequest(f"{where}: features must map names to finite numbers")
        if len(request.features) > MAX_FEATURES:
            raise InvalidRequest(f"{where}: {len(request.features):,} features; at most {MAX_FEATURES} (an estimator's "
                                 f"inputs, written with the request's records)")
        for name in request.features:
            _utf8(where, "features key", name)
    size = 0
    for index, message in enumerate(request.messages):
        if message.role not in ROLES:
            raise InvalidRequest(
                f"{where}: messages[{index}].role must be one of {', '.join(sorted(ROLES))}, got {message.role!r}"
            )
        if not isinstance(message.content, str):
            raise InvalidRequest(f"{where}: messages[{index}].content must be a string")
        size += len(_utf8(where, f"messages[{index}].content", message.content))
    if size > MAX_PROMPT_BYTES:
        raise InvalidRequest(
            f"{where}: the prompt is {size:,} bytes; at most {MAX_PROMPT_BYTES:,} bytes fit any model's context window"
        )


def validate_feedback(request_id: Any, score: Any) -> float:
    """The score as a float, for a feedback that can be recorded: a request id that is UTF-8 text and a finite
    number (the online learner holds it to [0, 1]; NaN or infinity would say nothing it could hold). Any real
    number will do, a numpy float32 fitness included: only the float is kept."""
    _request_id("feedback", request_id)
    if not (isinstance(score, numbers.Real) and not isinstance(score, bool) and math.isfinite(score)):
        raise InvalidRequest(f"feedback for {request_id!r}: score must be a finite number from 0 to 1, got {score!r:.40}")
    return float(score)


def whole_number(name: str, value: object, low: int, hint: str = "") -> int:
    """`value` when it is an int (a bool is not) from `low`: a count or a depth an API caller passes, which a slice
    or a range would otherwise take silently as something else (-1, 1.5); else InvalidRequest naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidRequest(f"{name} must be a whole number from {low}{hint}, got {value!r}")
    return value


def number_in(name: str, value: object, low: float, high: float, hint: str = "") -> None:
    """InvalidRequest naming `name` unless `value` is a finite int or float (a bool is not) from `low` to `high`: a
    ratio or a temperature an API caller passes."""
    if not _finite(value) or not low <= value <= high:  # type: ignore[operator]
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}{hint}, got {value!r}")


def _request_id(where: str, rid: Any) -> None:
    """A request's id, on a request or on the feedback naming it: 1 to MAX_REQUEST_ID characters of UTF-8 text."""
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_REQUEST_ID:
        raise InvalidRequest(f"{where}: request_id must be a string of 1 to {MAX_REQUEST_ID} characters, got {rid!r:.60}")
    _utf8(where, "request_id", rid)


def _utf8(where: str, field: str, text: str) -> bytes:
    """`text` as UTF-8: what a provider, the cache and the logs are given. A lone surrogate (a half of a UTF-16
    pair, which Python strings can hold and JSON escapes can spell) has no UTF-8 form, so it is refused here,
    where the field can be named, rather than by an encoder deep in an actor."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"{where}: {field} is not valid Unicode text: a lone surrogate U+{ord(text[exc.start]):04X} at character "
            f"{exc.start} (half of a UTF-16 pair) cannot be sent to a provider or written to the logs"
        ) from None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(where: str, field: str, value: Any, low: int, high: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRequest(f"{where}: {field} must be an integer from {low} to {high:,}, got {value!r}")


def _number(
    where: str, field: str, value: Any, low: float, high: float, *, optional: bool = False, low_open: bool = False
) -> None:
    if value is None and optional:
        return
    above = value > low if low_open else value >= low
    if not _finite(value) or not above or value > high:
        bound = "above" if low_open else "from"
        top = "" if high == math.inf else f" to {high:g}"
        raise InvalidRequest(f"{where}: {field} must be a number {bound} {low:g}{top}, got {value!r}")


def _strings(where: str, field: str, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequest(f"{where}: {field} must map strings to strings")

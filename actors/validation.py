"""The one check every request passes: types and ranges of every field, with the allowed range.

`Request` runs it on construction, so the Python API, JSONL workloads, the HTTP server
and the CLI all refuse the same inputs with the same `InvalidRequest`, naming the
field, the value and what is allowed. A request that reaches the router is one the
ledger can price: no negative or absurd token counts, no temperatures off the scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from actors.errors import InvalidRequest


class _Message(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


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

MAX_TOKENS = 1_000_000
"""Above any model's output limit: a larger value is a typo, not a request."""
MAX_PROMPT_BYTES = 8 * 1024 * 1024
"""Larger than the largest context window (about 2M tokens) can hold."""
MAX_STOP_SEQUENCES = 16
MAX_REQUEST_ID = 256
MAX_DEADLINE_S = 86_400.0
ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


def validate_request(request: CheckedRequest) -> None:
    """Raise InvalidRequest naming the first field that is out of its range."""
    rid = request.request_id
    where = f"request {rid!r}" if isinstance(rid, str) else "request"
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_REQUEST_ID:
        raise InvalidRequest(f"{where}: request_id must be a string of 1 to {MAX_REQUEST_ID} characters, got {rid!r}")
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
        raise InvalidRequest(f"{where}: stop must be at most {MAX_STOP_SEQUENCES} non-empty strings, got {request.stop!r}")
    _strings(where, "metadata", request.metadata)
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
    size = 0
    for index, message in enumerate(request.messages):
        if message.role not in ROLES:
            raise InvalidRequest(
                f"{where}: messages[{index}].role must be one of {', '.join(sorted(ROLES))}, got {message.role!r}"
            )
        if not isinstance(message.content, str):
            raise InvalidRequest(f"{where}: messages[{index}].content must be a string")
        size += len(message.content.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidRequest(
            f"{where}: the prompt is {size:,} bytes; at most {MAX_PROMPT_BYTES:,} bytes fit any model's context window"
        )


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

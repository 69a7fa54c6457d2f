"""The data a wire protocol builds and parses; shared by every protocol module."""

from __future__ import annotations

import attrs

from actors.messages import FailureKind


@attrs.frozen
class HttpCall:
    """One HTTP request to send. Headers hold the API key, so they never appear in repr."""

    method: str
    url: str
    headers: dict[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


@attrs.frozen
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str


@attrs.frozen
class Failure:
    kind: FailureKind
    detail: str
    http_status: int = 0
    retry_after_s: float | None = None
    sent: bool = True

"""Helpers the protocol modules share: JSON decoding that never raises, error text."""

from __future__ import annotations

from typing import Any

import orjson

from actors.messages import FailureKind
from actors.providers.wire import Failure


def load_json(body: bytes) -> Any:
    """The parsed body, or None if it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def malformed(detail: str, status: int) -> Failure:
    return Failure(FailureKind.MALFORMED_RESPONSE, detail, status)


def error_text(body: bytes, parsed: Any, limit: int = 300) -> str:
    """A short description of an error body for people and logs."""
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:limit]
        if isinstance(err, str):
            return err[:limit]
    return body[:limit].decode("utf-8", "replace")


def nonneg_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

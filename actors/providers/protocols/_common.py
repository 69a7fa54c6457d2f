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


MAX_REPORTED_TOKENS = 100_000_000
"""The most tokens a usage count may claim: no model reads or writes near it in one call. A larger one is a
broken report, and charged in full it would spend a whole budget at once: the answer is malformed instead, and
its reservation held (counted in full until `budget reconcile` sets it from the bill)."""


def nonneg_int(value: Any) -> int | None:
    """A usage count, or None if it is not a whole number from 0 to MAX_REPORTED_TOKENS."""
    return value if type(value) is int and 0 <= value <= MAX_REPORTED_TOKENS else None

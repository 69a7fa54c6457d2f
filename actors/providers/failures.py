"""Classifying failures: HTTP statuses and transport exceptions into FailureKind.

Each protocol module reads its own error bodies (what a "prompt too long" looks like
differs per provider) and then falls back on `classify_status`. Details never echo
headers, so a key can never leak through an error message.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
from collections.abc import Mapping
from datetime import datetime

import aiohttp

from actors.messages import FailureKind
from actors.providers.transport import AnswerTooLarge
from actors.providers.wire import Failure

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _parse_duration(value: str) -> float | None:
    """OpenAI's reset headers: "1s", "6m0s", "250ms", "1h2m3s"."""
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _parse_rfc3339(value: str, now: float) -> float | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - now)


MAX_RETRY_AFTER_S = 86_400.0
"""The longest wait a provider's headers are taken at (a day: the longest quota period any provider resets on).
"inf" or a wait of centuries would otherwise pause the provider for good, and be passed on to clients."""


def retry_after_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """The longest wait any of the providers' rate-limit headers asks for, if any: each one read as a number of
    seconds from 0 to MAX_RETRY_AFTER_S (one that is not a finite number is ignored)."""
    waits = [min(MAX_RETRY_AFTER_S, max(0.0, wait)) for wait in _waits(headers, now) if math.isfinite(wait)]
    return max(waits) if waits else None


def _waits(headers: Mapping[str, str], now: float) -> list[float]:
    waits: list[float] = []
    if "retry-after-ms" in headers:
        try:
            waits.append(float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in headers:
        parsed = parse_retry_after(headers["retry-after"], now)
        if parsed is not None:
            waits.append(parsed)
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if name in headers and headers.get(name.replace("reset", "remaining"), "1") == "0":
            parsed = _parse_duration(headers[name])
            if parsed is not None:
                waits.append(parsed)
    for name in ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset"):
        if name in headers and headers.get(name.replace("reset", "remaining"), "1") == "0":
            parsed = _parse_rfc3339(headers[name], now)
            if parsed is not None:
                waits.append(parsed)
    return waits


def classify_status(status: int, detail: str, headers: Mapping[str, str], now: float) -> Failure:
    """The generic mapping, for statuses a protocol's own rules did not settle."""
    if 300 <= status < 400:
        return redirected(status, headers)
    if status == 429:
        return Failure(FailureKind.RATE_LIMIT, detail, status, retry_after_from_headers(headers, now))
    if status in (401, 403):
        return Failure(FailureKind.AUTH, detail, status)
    if status == 408:
        return Failure(FailureKind.TIMEOUT, detail, status)
    if 400 <= status < 500:
        return Failure(FailureKind.INVALID_REQUEST, detail, status)
    if status >= 500:
        return Failure(FailureKind.SERVER_ERROR, detail, status, retry_after_from_headers(headers, now))
    return Failure(FailureKind.UNKNOWN, detail, status)


def classify_exception(exc: BaseException) -> Failure:
    """A transport failure; `sent` is False only when the request certainly never left.

    A refused or timed-out connection sent nothing; a connection dropped after it was
    made may have delivered the request, which the provider may bill.
    """
    name = type(exc).__name__
    if isinstance(exc, AnswerTooLarge):
        return Failure(FailureKind.MALFORMED_RESPONSE, str(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure(FailureKind.TIMEOUT, f"connect timeout ({name})", sent=False)
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return Failure(FailureKind.UNAVAILABLE, f"connection failed ({name}: {exc})", sent=False)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return Failure(FailureKind.TIMEOUT, f"timed out waiting for the response ({name}{': ' + str(exc) if str(exc) else ''})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure(FailureKind.MALFORMED_RESPONSE, f"truncated or corrupt body ({name})")
    if isinstance(
        exc,
        (
            aiohttp.ClientConnectorError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            ConnectionError,
            OSError,
        ),
    ):
        return Failure(FailureKind.UNAVAILABLE, f"connection failed ({name}: {exc})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure(FailureKind.MALFORMED_RESPONSE, f"bad HTTP response ({name}: {exc.message})")
    return Failure(FailureKind.UNKNOWN, f"{name}: {exc}")


def redirected(status: int, headers: Mapping[str, str]) -> Failure:
    """A redirect is not followed: the key would travel with it to wherever it points (Anthropic's and Gemini's key
    headers are not dropped for another host, as Authorization is). The provider's address is wrong, so it is
    taken out like one with a wrong key, and nothing was served or billed."""
    where = headers.get("location", "")
    return Failure(
        FailureKind.AUTH,
        f"the endpoint answered {status}, a redirect{' to ' + where[:200] if where else ''}: redirects are not "
        "followed, so the key never goes to another address; set api_endpoint to the address it redirects to",
        status,
        sent=False,
    )

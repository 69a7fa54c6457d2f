"""Scrub secrets out of provider error text before anyone stores, logs, raises or returns it.

Providers sometimes echo the request back in an error body (a proxy quoting the
Authorization header, a Gemini URL with `key=` in it). Every detail a provider actor
reports passes through `Redactor.scrub`: the configured key's value wherever it
appears, and anything shaped like a credential header or parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[redacted]"
_PATTERNS = (
    re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?\s*)(bearer\s+|basic\s+)?[^\s\"',;}]+"),
    re.compile(r"(?i)((?:x-api-key|x-goog-api-key|api[-_]?key|access[-_]?token)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"),
    re.compile(r"(?i)([?&](?:key|api_key|token)=)[^\s&\"']+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
)


class Redactor:
    """Knows the secret values of one provider; `scrub` removes them and credential-shaped text."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"<Redactor {len(self._secrets)} secrets>"

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + MASK, text)
        return text

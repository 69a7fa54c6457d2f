"""Settings of one provider actor: where it is, how it speaks, what it costs, its limits.

The API key is never part of the settings: only the name of the environment
variable that holds it, read when the provider actor starts.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class ProviderSettings:
    name: str
    protocol: str
    base_url: str
    model: str
    input_price_nd_per_mtok: int
    output_price_nd_per_mtok: int
    api_key_env: str | None = None
    context_window: int = 32_768
    max_concurrency: int = 16
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float | None = None
    """With a streamed protocol: how long the server may take to send its first bytes (then `timeout_s` applies)."""
    queue_limit: int = 10_000
    max_answer_bytes: int = 64 * 1024 * 1024
    """The most a response body may hold: a provider, proxy or local server that sends more fails the call
    (MALFORMED_RESPONSE) instead of filling the process's memory. An answer of a million tokens is a few MB."""
    local: bool = False
    extra_headers: dict[str, str] = attrs.field(factory=dict)


def key_problem(variable: str, value: str | None) -> str:
    """What makes the key in `variable` unusable ("" when nothing does), never quoting the key.

    A key read from a file or a `.env` often ends in a newline or a carriage return: an
    HTTP client refuses such a header, so every call failed as UNKNOWN (its money held)
    while the key looked set. Such a key is named here, where the variable can be, and
    the provider's calls fail as AUTH, sent nowhere.
    """
    if not value:
        return f"{variable} is not set"
    for position, character in enumerate(value):
        if ord(character) < 0x20 or ord(character) == 0x7F:
            return (f"{variable} holds a control character (U+{ord(character):04X}) at character {position} of "
                    f"{len(value)}: a trailing newline or carriage return? An HTTP header cannot carry it")
        if ord(character) > 0xFF:
            return f"{variable} holds a character an HTTP header cannot carry (U+{ord(character):04X}) at character {position}"
    return ""

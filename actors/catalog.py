"""The one codec of the engine, built from every package's message classes."""

from __future__ import annotations

from actors import messages
from actors.cache import messages as cache_messages
from actors.codec import Codec
from actors.ledger import messages as ledger_messages
from actors.providers import messages as provider_messages
from actors.telemetry import events as telemetry_events

CODEC = Codec(
    messages.MESSAGES
    + ledger_messages.MESSAGES
    + provider_messages.MESSAGES
    + cache_messages.MESSAGES
    + telemetry_events.MESSAGES,
    memo=(messages.ArcTask, messages.Decision),
)
encode = CODEC.encode
decode = CODEC.decode

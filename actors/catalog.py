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
    + telemetry_events.MESSAGES
)


def engine_codec() -> Codec:
    """The codec one engine's actors speak: CODEC's messages, remembering the encoding of the ARC tasks and
    decisions it sends again and again (a GA sends one task object for every sample, and a request's
    decision travels in its result and its telemetry record)."""
    return CODEC.remembering((messages.ArcTask, messages.Decision))

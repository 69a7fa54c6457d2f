"""The telemetry log's own codec: the engine's messages and telemetry events, nothing else.

The log is a file format that outlives any one version of the actors around it, so
its reader depends only on what the log can hold, not on the ledger's, the cache's
or the providers' private messages.
"""

from __future__ import annotations

from actors import messages
from actors.codec import Codec
from actors.telemetry import events

CODEC = Codec(messages.MESSAGES + events.MESSAGES)

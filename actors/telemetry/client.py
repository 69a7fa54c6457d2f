"""Emitting telemetry from the hot path: never blocks, never drops silently.

A request's own record (`RequestServed`) is deferred: it waits up to LINGER_S to be
encoded and sent, together with the records of the requests that ended meanwhile,
by a task of the client's own. Encoding it was the largest part of a request's
inline CPU left at concurrency 16 (docs/BENCHMARKS.md), and with providers that take
tens of milliseconds requests end and start in waves: deferred, the encoding runs in
the quiet after a wave instead of delaying the wave's next sends. The engine's
messages are frozen, but a few of their fields are dicts (a request's features and
metadata, a decision's features): a caller that changes one in place within
LINGER_S of getting its result changes what the record says. Everything else is
encoded and sent at once.
"""

from __future__ import annotations

import logging
import math
import time

import anyio

from actors.errors import CodecError, OrchestratorError
from actors.runtime.actor import ActorRef
from actors.runtime.doorbell import Doorbell
from actors.telemetry.events import FlushTelemetry, TelemetryShed

log = logging.getLogger(__name__)


class TelemetryClient:
    LINGER_S = 0.02
    DEFERRED_BATCH = 256
    """Deferred records sent at once, without waiting out the linger, once this many wait."""

    def __init__(self, ref: ActorRef) -> None:
        self._ref = ref
        self.shed = 0
        self.unencodable = 0
        """Events that could not be encoded (each logged with its cause): one bad event never stops the others."""
        self._unreported = 0
        self._deferred: list[object] = []
        self._doorbell = Doorbell()
        self._closed = False

    def emit(self, event: object) -> None:
        """Queue an event; if the collector's inbox is full, count it as shed."""
        if self._unreported:
            try:
                self._ref.tell_nowait(TelemetryShed(time.time(), self._unreported))
                self._unreported = 0
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        try:
            self._ref.tell_nowait(event)
        except CodecError as exc:
            self.unencodable += 1
            log.error("telemetry: an event left out of the log, it cannot be encoded (%s)", exc)
        except anyio.WouldBlock:
            if not self.shed:
                log.warning("telemetry buffer full: shedding events (they are counted in the log)")
            self.shed += 1
            self._unreported += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.shed += 1

    def defer(self, event: object) -> None:
        """Emit `event` within LINGER_S, with whatever else was deferred meanwhile (at once once closed)."""
        if self._closed:
            self.emit(event)
            return
        self._deferred.append(event)
        self._doorbell.ring(urgent=len(self._deferred) >= self.DEFERRED_BATCH)

    async def run(self) -> None:
        """Send deferred events as they come due, until `close`."""
        while not self._closed:
            await self._doorbell.wait(self.LINGER_S)
            self._send_deferred()

    def close(self) -> None:
        """Send what is deferred and defer nothing more; `run` returns."""
        self._closed = True
        self._send_deferred()
        self._doorbell.ring(urgent=True)

    def _send_deferred(self) -> None:
        events, self._deferred = self._deferred, []
        for event in events:
            self.emit(event)

    async def flush(self) -> None:
        self._send_deferred()
        try:
            await self._ref.ask(FlushTelemetry(), math.inf)
        except OrchestratorError:
            log.warning("telemetry collector unavailable; events in its buffer may be lost")

"""Emitting telemetry from the hot path: never blocks, never drops silently."""

from __future__ import annotations

import logging
import math
import time

import anyio

from actors.errors import OrchestratorError
from actors.runtime.actor import ActorRef
from actors.telemetry.events import FlushTelemetry, TelemetryShed

log = logging.getLogger(__name__)


class TelemetryClient:
    def __init__(self, ref: ActorRef) -> None:
        self._ref = ref
        self.shed = 0
        self._unreported = 0

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
        except anyio.WouldBlock:
            if not self.shed:
                log.warning("telemetry buffer full: shedding events (they are counted in the log)")
            self.shed += 1
            self._unreported += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.shed += 1

    async def flush(self) -> None:
        try:
            await self._ref.ask(FlushTelemetry(), math.inf)
        except OrchestratorError:
            log.warning("telemetry collector unavailable; events in its buffer may be lost")

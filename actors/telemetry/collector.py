"""The telemetry collector: appends events to the log without ever slowing routing.

Events arrive already encoded (the collector is a raw actor) and are written as they
are: no decode, no re-encode. They are framed into a buffer and written by a
flusher, in a worker thread, every `flush_interval_s` or when the buffer passes
1 MiB. The bound is the inbox: the emitting side never waits, and what it had to
shed is counted and logged as a TelemetryShed event (see TelemetryClient). A write
that fails (a full disk) drops that batch, logs one line, and counts what it dropped
until a write succeeds again, which records the count as a TelemetryShed too: the
collector keeps serving, routing never notices.
"""

from __future__ import annotations

import logging
import time

import anyio

from actors.runtime.actor import Actor
from actors.telemetry.codec import CODEC
from actors.telemetry.events import FlushTelemetry, TelemetryShed
from actors.telemetry.log import SegmentWriter, frame
from actors.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)

_FLUSH_TAG_BYTES = CODEC.encode(FlushTelemetry())
_BUFFER_BYTES = 1 << 20


class TelemetryCollector(Actor):
    name = "telemetry"
    raw = True

    def __init__(self, settings: TelemetrySettings) -> None:
        assert settings.dir is not None, "a collector needs a log directory"
        self.settings = settings
        self._writer: SegmentWriter | None = None
        self._frames: list[bytes] = []
        self._pending_bytes = 0
        self._limiter = anyio.CapacityLimiter(1)
        self._unwritten = 0
        """Events whose write failed (a full disk) since the last that succeeded."""

    async def on_start(self) -> None:
        settings = self.settings
        self._writer = await anyio.to_thread.run_sync(
            SegmentWriter, settings.dir, settings.segment_bytes, settings.fingerprint
        )
        self.tasks.start_soon(self._ticker)

    async def on_stop(self) -> None:
        await self._flush()
        if self._unwritten:
            log.error("telemetry: %d events could not be written to %s", self._unwritten, self.settings.dir)
        if self._writer is not None:
            try:
                await anyio.to_thread.run_sync(self._writer.close, limiter=self._limiter)
            except OSError as exc:
                log.error("telemetry: closing the log in %s failed (%s)", self.settings.dir, exc.strerror or exc)

    async def handle(self, msg: bytes, corr: int) -> object | None:
        if msg == _FLUSH_TAG_BYTES:
            await self._flush()
            return FlushTelemetry()
        self._frames.append(frame(msg))
        self._pending_bytes += len(msg) + 8
        if self._pending_bytes >= _BUFFER_BYTES:
            await self._flush()
        return None

    async def _flush(self) -> None:
        if not self._frames or self._writer is None:
            return
        frames, self._frames = self._frames, []
        self._pending_bytes = 0
        if self._unwritten:  # the loss, in the log itself, ahead of the first records written again
            frames.insert(0, frame(CODEC.encode(TelemetryShed(time.time(), self._unwritten))))
        writer = self._writer
        try:
            await anyio.to_thread.run_sync(writer.write, b"".join(frames), len(frames), limiter=self._limiter)
        except OSError as exc:
            if not self._unwritten:
                log.error("telemetry: cannot write to %s (%s); events are dropped and counted until it can",
                          self.settings.dir, exc.strerror or exc)
            self._unwritten += len(frames) - (1 if self._unwritten else 0)
            return
        if self._unwritten:
            log.warning("telemetry: writing to %s again; %d events could not be written meanwhile (recorded as "
                        "TelemetryShed)", self.settings.dir, self._unwritten)
            self._unwritten = 0

    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.settings.flush_interval_s)
            await self._flush()

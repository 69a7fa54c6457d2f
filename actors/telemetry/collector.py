"""The telemetry collector: appends events to the log without ever slowing routing.

Events arrive already encoded (the collector is a raw actor) and are written as they
are: no decode, no re-encode. They are framed into a buffer and written by a
flusher, in a worker thread, every `flush_interval_s` or when the buffer passes
1 MiB. The bound is the inbox: the emitting side never waits, and what it had to
shed is counted and logged as a TelemetryShed event (see TelemetryClient).
"""

from __future__ import annotations

import anyio

from actors.runtime.actor import Actor
from actors.telemetry.codec import CODEC
from actors.telemetry.events import FlushTelemetry
from actors.telemetry.log import SegmentWriter, frame
from actors.telemetry.settings import TelemetrySettings

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

    async def on_start(self) -> None:
        settings = self.settings
        self._writer = await anyio.to_thread.run_sync(
            SegmentWriter, settings.dir, settings.segment_bytes, settings.fingerprint
        )
        self.tasks.start_soon(self._ticker)

    async def on_stop(self) -> None:
        await self._flush()
        if self._writer is not None:
            await anyio.to_thread.run_sync(self._writer.close, limiter=self._limiter)

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
        writer = self._writer
        await anyio.to_thread.run_sync(writer.write, b"".join(frames), len(frames), limiter=self._limiter)

    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.settings.flush_interval_s)
            await self._flush()

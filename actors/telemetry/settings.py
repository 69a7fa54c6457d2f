"""Settings of the telemetry collector."""

from __future__ import annotations

import attrs


@attrs.frozen
class TelemetrySettings:
    dir: str | None = None
    segment_bytes: int = 64 * 1024 * 1024
    buffer_events: int = 65_536
    flush_interval_s: float = 0.5
    fingerprint: str = ""

"""Writing every byte: `os.write` may write fewer than it was given (near a full disk, on a signal), and the
journal, the telemetry log and the unsent closings each need all of a record or a clear OSError."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """Write `data` to `fd` until every byte is written (at `offset` if given, with pwrite), or raise its OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[written:]
        if offset is not None:
            offset += written

"""Writing files so that a crash leaves either the old contents or the new, whole and owner-only.

`os.write` may write fewer bytes than it was given (near a full disk, on a signal), and
a rename reaches the disk only once its directory is synced: the journal, its
snapshots, the unsent closings, the telemetry log and the router's model files each
need all of their bytes or a clear OSError, and a replacement that survives a power cut.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """Write `data` to `fd` until every byte is written (at `offset` if given, with pwrite), or raise its OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[written:]
        if offset is not None:
            offset += written


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes) -> None:
    """Put `data` at `path` atomically: a temp file of this process beside it (0o600, every byte, fsynced),
    renamed over `path`, then the directory fsynced. On any failure the temp file is removed and `path` is
    untouched; the OSError propagates for the caller to name."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)

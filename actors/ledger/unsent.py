"""Closings the shared ledger could not hear, kept on disk across a clean exit.

A settle, release or hold told while the database is away is kept in memory and sent
again with every batch until the database has it. If the process stops first, what
is left goes to a file of its own in the state directory (owner-only, written whole
then renamed), and the next process on that directory sends it again: repeats are
idempotent by reservation id, so sending twice, or from two processes, is harmless.
A file is removed only once the database has acknowledged everything in it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from actors.catalog import CODEC
from actors.errors import CodecError
from actors.fileio import replace_durably
from actors.ledger.messages import Hold, Release, Settle, UnsentClosings

log = logging.getLogger(__name__)

Closing = Settle | Release | Hold
PREFIX = "unsent-closings-"


def directory_of(state_dir: str | None) -> Path | None:
    return None if state_dir is None else Path(state_dir) / "ledger"


def save(directory: Path, closings: Sequence[Closing]) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = CODEC.encode(UnsentClosings(tuple(CODEC.encode(c) for c in closings)))
    path = directory / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    replace_durably(path, data)
    return path


def load(directory: Path) -> tuple[list[Closing], list[Path]]:
    """Every kept closing, and the files they came from; a damaged file is named and left alone."""
    closings: list[Closing] = []
    files: list[Path] = []
    for path in sorted(directory.glob(f"{PREFIX}*")):
        if path.suffix == ".tmp":
            continue
        try:
            kept = CODEC.decode(path.read_bytes())
            if not isinstance(kept, UnsentClosings):
                raise CodecError(f"holds a {type(kept).__name__}, not unsent closings")
            found = [CODEC.decode(raw) for raw in kept.closings]
            if not all(isinstance(c, (Settle, Release, Hold)) for c in found):
                raise CodecError("holds something other than a settle, release or hold")
        except (OSError, CodecError) as exc:
            log.error("ledger: %s cannot be read (%s); it is left in place for a person to look at", path, exc)
            continue
        closings.extend(found)  # type: ignore[arg-type]
        files.append(path)
    return closings, files


def discard(files: Sequence[Path]) -> None:
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass

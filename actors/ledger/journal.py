"""The ledger's journal: every operation durable before the ledger answers.

File format: a 16-byte header (magic b"ORCHLEDG", format version u16, 6 reserved
bytes), then records framed as [u32 length][u32 crc32 of the payload][payload], the
payload a codec-encoded JournalEntry. Recovery reads records until the end:

- a torn tail (a length running past the end, or a bad checksum on the very last
  record) is cut off with a logged warning: it was never acknowledged, because an
  answer is sent only after the fsync that covers its record;
- a bad record followed by more data is corruption in the middle: recovery refuses
  with JournalError naming the offset, since silently dropping it could lose an
  acknowledged operation;
- an empty file is a new journal; a wrong magic or version is refused.

Compaction writes a snapshot (atomically: temp file, fsync, rename, fsync of the
directory) holding the state up to a sequence number, then starts a fresh journal;
entries at or below the snapshot's sequence are skipped on replay, so a crash between
the two steps double-applies nothing.

Storage sits behind `Storage`, a small interface (read, append, sync, truncate,
replace, snapshots), so a shared backend (Redis, PostgreSQL) is a new class.
`MemoryStorage` can simulate a power cut: bytes not yet synced are lost.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Protocol

from actors.catalog import CODEC
from actors.errors import CodecError, JournalError
from actors.ledger.messages import JournalEntry, LedgerSnapshot

log = logging.getLogger(__name__)

MAGIC = b"ORCHLEDG"
VERSION = 1
HEADER = MAGIC + struct.pack(">H", VERSION) + b"\x00" * 6
FRAME = struct.Struct(">II")


class Storage(Protocol):
    def read(self) -> bytes: ...

    def append(self, data: bytes) -> None: ...

    def sync(self) -> None: ...

    def truncate(self, size: int) -> None: ...

    def replace(self, data: bytes) -> None: ...

    def read_snapshot(self) -> bytes | None: ...

    def write_snapshot(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class FileStorage:
    """The journal file, its snapshot beside it, and a lock held while open."""

    def __init__(self, path: str | Path, state_dir: str | Path | None) -> None:
        self.path = Path(path)
        if state_dir is not None:
            root = Path(state_dir).resolve()
            if not self.path.resolve().is_relative_to(root):
                raise JournalError(f"journal path {self.path} lies outside the state directory {root}")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.snapshot_path = self.path.with_name(self.path.name + ".snapshot")
        self._lock = _acquire_lock(self.path.with_name(self.path.name + ".lock"))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.path, 0o600)

    def read(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()

    def append(self, data: bytes) -> None:
        os.write(self._fd, data)

    def sync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)

    def replace(self, data: bytes) -> None:
        _write_atomic(self.path, data)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND, 0o600)

    def read_snapshot(self) -> bytes | None:
        try:
            return self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_snapshot(self, data: bytes) -> None:
        _write_atomic(self.snapshot_path, data)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock)


def _acquire_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise JournalError(
                f"the ledger journal {path.with_suffix('')} is in use by another orchestrator process "
                f"(pid {holder}); two processes must not share one ledger"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


class MemoryStorage:
    """In-memory storage that knows what has been synced: `power_cut` loses the rest."""

    def __init__(self) -> None:
        self.durable = b""
        self.pending = b""
        self.snapshot: bytes | None = None
        self.syncs = 0

    def read(self) -> bytes:
        return self.durable + self.pending

    def append(self, data: bytes) -> None:
        self.pending += data

    def sync(self) -> None:
        self.durable += self.pending
        self.pending = b""
        self.syncs += 1

    def truncate(self, size: int) -> None:
        data = self.read()[:size]
        self.durable, self.pending = data, b""

    def replace(self, data: bytes) -> None:
        self.durable, self.pending = data, b""

    def read_snapshot(self) -> bytes | None:
        return self.snapshot

    def write_snapshot(self, data: bytes) -> None:
        self.snapshot = data

    def power_cut(self) -> None:
        self.pending = b""

    def close(self) -> None:
        """Nothing to release."""


def frame(entry: JournalEntry) -> bytes:
    payload = CODEC.encode(entry)
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class Recovered:
    """What a journal held: the snapshot (if any), the entries after it, and what was cut."""

    def __init__(self, snapshot: LedgerSnapshot | None, entries: list[JournalEntry], cut_bytes: int) -> None:
        self.snapshot = snapshot
        self.entries = entries
        self.cut_bytes = cut_bytes


def recover(storage: Storage, where: str) -> Recovered:
    """Read snapshot and journal, cutting a torn tail; raise JournalError on real damage."""
    snapshot = None
    raw_snapshot = storage.read_snapshot()
    if raw_snapshot is not None:
        try:
            snapshot = CODEC.decode(raw_snapshot)
        except CodecError as exc:
            raise JournalError(f"{where}.snapshot: corrupt snapshot ({exc})") from None
        if not isinstance(snapshot, LedgerSnapshot):
            raise JournalError(f"{where}.snapshot: not a ledger snapshot")
    data = storage.read()
    if not data:
        storage.append(HEADER)
        storage.sync()
        return Recovered(snapshot, [], 0)
    if len(data) < len(HEADER):
        if HEADER.startswith(data):
            log.warning("%s: torn journal header (%d bytes) rewritten", where, len(data))
            storage.replace(HEADER)
            return Recovered(snapshot, [], len(data))
        raise JournalError(f"{where}: not a ledger journal (bad magic)")
    if data[:8] != MAGIC:
        raise JournalError(f"{where}: not a ledger journal (bad magic {data[:8]!r})")
    version = struct.unpack(">H", data[8:10])[0]
    if version != VERSION:
        raise JournalError(f"{where}: journal format version {version}, this program reads version {VERSION}")
    entries: list[JournalEntry] = []
    offset = len(HEADER)
    floor = snapshot.seq if snapshot is not None else 0
    while offset < len(data):
        problem = None
        if offset + FRAME.size > len(data):
            problem = "torn frame header"
        else:
            length, crc = FRAME.unpack_from(data, offset)
            end = offset + FRAME.size + length
            if end > len(data):
                problem = "record runs past the end"
            else:
                payload = data[offset + FRAME.size : end]
                if zlib.crc32(payload) != crc:
                    problem = "checksum mismatch"
                    if end < len(data):
                        raise JournalError(
                            f"{where}: corrupt record at byte {offset} of {len(data)} with intact data after it; "
                            "refusing to drop what may be an acknowledged operation (restore the file or "
                            "inspect it before starting)"
                        )
                else:
                    try:
                        entry = CODEC.decode(payload)
                    except CodecError as exc:
                        raise JournalError(f"{where}: undecodable record at byte {offset}: {exc}") from None
                    if not isinstance(entry, JournalEntry):
                        raise JournalError(f"{where}: record at byte {offset} is not a journal entry")
                    if entry.seq > floor:
                        entries.append(entry)
                    offset = end
                    continue
        log.warning("%s: cut %d bytes of unacknowledged tail at byte %d (%s)", where, len(data) - offset, offset, problem)
        storage.truncate(offset)
        return Recovered(snapshot, entries, len(data) - offset)
    return Recovered(snapshot, entries, 0)


def compact(storage: Storage, snapshot: LedgerSnapshot) -> None:
    storage.write_snapshot(CODEC.encode(snapshot))
    storage.replace(HEADER)

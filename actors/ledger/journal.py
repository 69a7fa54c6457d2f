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

Whether a bad record is a torn tail or corruption is decided by what follows it: if
an intact record (a plausible length whose checksum matches) starts anywhere after
the bad spot, the damage is in the middle and recovery refuses, even when the bad
record's declared length runs past the end of the file.

Compaction writes a snapshot (atomically: temp file, every byte written, fsync,
rename, fsync of the directory) holding the state up to a sequence number, then
starts a fresh journal; entries at or below the snapshot's sequence are skipped on
replay, so a crash between the two steps double-applies nothing. A compaction that
fails (a full disk) leaves the previous snapshot and the journal as they were.

Commands that only read (`orchestrator budget`, `replay`) open the journal with
`FileStorage(..., read_only=True)`: no lock, no header written, no tail cut; the file
stays byte-identical.

Storage sits behind `Storage`, a small interface (read, append, sync, truncate,
replace, snapshots), so a shared backend is a new class. `MemoryStorage` can
simulate a power cut: bytes not yet synced are lost.
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

from actors.codec import Codec
from actors.errors import CodecError, JournalError
from actors.ledger.messages import JournalEntry, LedgerSnapshot, SnapshotReservation

log = logging.getLogger(__name__)

MAGIC = b"ORCHLEDG"
VERSION = 1
HEADER = MAGIC + struct.pack(">H", VERSION) + b"\x00" * 6
FRAME = struct.Struct(">II")
MAX_RECORD = 1 << 16
"""No journal entry comes near this size; a longer declared length is damage."""
CODEC = Codec((JournalEntry, SnapshotReservation, LedgerSnapshot))
"""The journal's own narrow codec: it carries ledger records and nothing else."""


class Storage(Protocol):
    blocking: bool
    """Whether its calls wait on a disk (then they run in a worker thread, off the event loop)."""

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


def _write_all(fd: int, data: bytes, path: Path) -> None:
    """Write every byte (os.write may write fewer); a full disk raises JournalError naming the file."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise JournalError(f"{path}: cannot write ({exc.strerror}); free space or fix permissions, then restart") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data, tmp)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class FileStorage:
    """The journal file, its snapshot beside it, and a lock held while open for writing.

    With `read_only=True` nothing is created, locked or changed: for commands that
    only look at the ledger while another process may be running it.
    """

    blocking = True

    def __init__(self, path: str | Path, state_dir: str | Path | None, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if state_dir is not None:
            root = Path(state_dir).resolve()
            if not self.path.resolve().is_relative_to(root):
                raise JournalError(f"journal path {self.path} lies outside the state directory {root}")
        self.snapshot_path = self.path.with_name(self.path.name + ".snapshot")
        self._lock: int | None = None
        self._fd: int | None = None
        if read_only:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock = _acquire_lock(self.path.with_name(self.path.name + ".lock"))
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            self.close()
            raise JournalError(
                f"{exc.filename or self.path}: cannot open the ledger journal ({exc.strerror}); "
                "check that the state directory is writable"
            ) from exc
        except BaseException:
            self.close()
            raise

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read the ledger journal ({exc.strerror})") from exc

    def _writable(self) -> int:
        if self._fd is None:
            raise JournalError(f"{self.path}: opened read-only; this command must not change the ledger")
        return self._fd

    def append(self, data: bytes) -> None:
        _write_all(self._writable(), data, self.path)

    def sync(self) -> None:
        """fdatasync where the platform has it: the appended records and the file's new length (all recovery reads)
        reach the disk without the timestamps fsync writes too, about a tenth less per group commit on this project's
        machines (docs/BENCHMARKS.md); fsync elsewhere."""
        fd = self._writable()
        if hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:
            os.fsync(fd)

    def truncate(self, size: int) -> None:
        fd = self._writable()
        os.ftruncate(fd, size)
        os.fsync(fd)

    def replace(self, data: bytes) -> None:
        self._writable()
        _write_atomic(self.path, data)
        os.close(self._writable())
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND, 0o600)

    def read_snapshot(self) -> bytes | None:
        try:
            return self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_snapshot(self, data: bytes) -> None:
        self._writable()
        _write_atomic(self.snapshot_path, data)

    def close(self) -> None:
        for fd in (self._fd, self._lock):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock = None


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
    """In-memory storage that knows what has been synced: `power_cut` loses the rest.

    It also backs a ledger configured without a journal: the storage outlives the
    actor, so a restarted ledger recovers every operation instead of starting empty.
    """

    blocking = False

    def __init__(self) -> None:
        self.durable = bytearray()
        self.pending = bytearray()
        self.snapshot: bytes | None = None
        self.syncs = 0

    def read(self) -> bytes:
        return bytes(self.durable + self.pending)

    def append(self, data: bytes) -> None:
        self.pending += data

    def sync(self) -> None:
        self.durable += self.pending
        self.pending.clear()
        self.syncs += 1

    def truncate(self, size: int) -> None:
        data = self.read()[:size]
        self.durable, self.pending = bytearray(data), bytearray()

    def replace(self, data: bytes) -> None:
        self.durable, self.pending = bytearray(data), bytearray()

    def read_snapshot(self) -> bytes | None:
        return self.snapshot

    def write_snapshot(self, data: bytes) -> None:
        self.snapshot = data

    def power_cut(self) -> None:
        self.pending.clear()

    def close(self) -> None:
        """Nothing to release: the bytes stay for the next actor that opens this storage."""


def frame(entry: JournalEntry) -> bytes:
    payload = CODEC.encode(entry)
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class Recovered:
    """What a journal held: the snapshot (if any), the entries after it, and what was cut."""

    def __init__(self, snapshot: LedgerSnapshot | None, entries: list[JournalEntry], cut_bytes: int) -> None:
        self.snapshot = snapshot
        self.entries = entries
        self.cut_bytes = cut_bytes


def recover(storage: Storage, where: str, *, read_only: bool = False) -> Recovered:
    """Read snapshot and journal, cutting a torn tail; raise JournalError on real damage.

    With `read_only`, nothing is written: a torn tail is skipped (and reported in
    `cut_bytes`) but left in the file.
    """
    snapshot = None
    raw_snapshot = storage.read_snapshot()
    if raw_snapshot is not None:
        try:
            snapshot = CODEC.decode(raw_snapshot)
        except CodecError as exc:
            raise JournalError(
                f"{where}.snapshot: corrupt snapshot ({exc}); restore it from a backup, or move it "
                "aside to rebuild from the journal alone"
            ) from None
        if not isinstance(snapshot, LedgerSnapshot):
            raise JournalError(f"{where}.snapshot: not a ledger snapshot")
    data = storage.read()
    if not data:
        if not read_only:
            storage.append(HEADER)
            storage.sync()
        return Recovered(snapshot, [], 0)
    if len(data) < len(HEADER):
        if HEADER.startswith(data):
            log.warning("%s: torn journal header (%d bytes) rewritten", where, len(data))
            if not read_only:
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
        payload, problem = _record_at(data, offset)
        if payload is None:
            if _intact_record_after(data, offset + 1):
                raise JournalError(
                    f"{where}: corrupt record at byte {offset} of {len(data)} ({problem}) with intact records "
                    "after it; refusing to drop what may be acknowledged operations. Restore the file from "
                    "a backup, or inspect it (the records after the damage are valid) before starting"
                )
            cut = len(data) - offset
            if read_only:
                log.warning("%s: ignoring %d bytes of unacknowledged tail at byte %d (%s)", where, cut, offset, problem)
            else:
                log.warning("%s: cut %d bytes of unacknowledged tail at byte %d (%s)", where, cut, offset, problem)
                storage.truncate(offset)
            return Recovered(snapshot, entries, cut)
        try:
            entry = CODEC.decode(payload)
        except CodecError as exc:
            raise JournalError(f"{where}: undecodable record at byte {offset}: {exc}") from None
        if not isinstance(entry, JournalEntry):
            raise JournalError(f"{where}: record at byte {offset} is not a journal entry")
        if entry.seq > floor:
            entries.append(entry)
        offset += FRAME.size + len(payload)
    return Recovered(snapshot, entries, 0)


def _record_at(data: bytes, offset: int) -> tuple[bytes | None, str]:
    """The intact payload framed at `offset`, or None and what is wrong with it."""
    if offset + FRAME.size > len(data):
        return None, "torn frame header"
    length, crc = FRAME.unpack_from(data, offset)
    end = offset + FRAME.size + length
    if end > len(data):
        return None, f"declared length {length} runs past the end"
    payload = data[offset + FRAME.size : end]
    if zlib.crc32(payload) != crc:
        return None, "checksum mismatch"
    return payload, ""


def _intact_record_after(data: bytes, start: int) -> bool:
    """Whether a plausible, checksummed record starts anywhere at or after `start`."""
    for offset in range(start, len(data) - FRAME.size):
        length, _ = FRAME.unpack_from(data, offset)
        if 0 < length <= MAX_RECORD and _record_at(data, offset)[0] is not None:
            return True
    return False


def compact(storage: Storage, snapshot: LedgerSnapshot) -> None:
    """Snapshot the state, then start a fresh journal; a failure in either step loses nothing."""
    storage.write_snapshot(CODEC.encode(snapshot))
    storage.replace(HEADER)

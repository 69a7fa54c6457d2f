"""The ledger's journal: every operation durable before the ledger answers.

File format 2: a 16-byte header (magic b"ORCHLEDG", format version u16, 6 reserved
bytes), then one commit frame per group commit, [u32 length][u32 crc32 of the body]
[body], whose body is that commit's records, each framed the same way around a
codec-encoded JournalEntry. The file is preallocated a chunk at a time
(`PREALLOCATE_BYTES`, where the platform has `posix_fallocate`), so it ends in zeros:
flushing a commit into space the file already has leaves its length alone, which makes
each fdatasync about a third cheaper on this project's machines (docs/BENCHMARKS.md).
Recovery reads commits until the zeros begin:

- a torn tail (a bad last commit: a length running past the end, a bad checksum, or
  zeros where its header should be with its bytes after them) is cut off with a logged
  warning: it was never acknowledged, because an answer is sent only after the fsync
  that covers its commit. Checksumming the commit whole is what makes this safe with
  preallocation: a commit the disk wrote out of order (a later block on disk, an
  earlier one not) is one bad commit, not a bad record with intact ones after it;
- a bad commit followed by an intact one is corruption in the middle: recovery refuses
  with JournalError naming the offset, since the next commit is written only after
  the previous one's fsync, so the damaged one was acknowledged;
- an empty file is a new journal; a wrong magic or version is refused.

Whether a bad commit is a torn tail or corruption is decided by what follows it: if an
intact commit (a plausible length whose checksum matches) starts anywhere after the
bad spot, the damage is in the middle and recovery refuses, even when the bad
commit's declared length runs past the end of the file. Format 1 (records framed one
by one, no commit frames, no zeros at the end) is read the same way record by record,
and rewritten as format 2 (one commit per record) the first time it is opened for
writing.

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

import contextlib
import errno
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import attrs

from actors.codec import Codec
from actors.errors import CodecError, JournalError
from actors.fileio import replace_durably, write_all
from actors.ledger.messages import JournalEntry, LedgerSnapshot, SnapshotReservation

log = logging.getLogger(__name__)

MAGIC = b"ORCHLEDG"
VERSION = 2
HEADER = MAGIC + struct.pack(">H", VERSION) + b"\x00" * 6
HEADER_V1 = MAGIC + struct.pack(">H", 1) + b"\x00" * 6
"""Format 1's header: records framed one by one (read, and rewritten as format 2 when opened for writing)."""
FRAME = struct.Struct(">II")
MAX_RECORD = 1 << 16
"""No journal entry comes near this size; a longer declared length is damage."""
PREALLOCATE_BYTES = 1 << 20
"""How much the journal file grows by at a time: a few thousand commits' worth."""
COMMIT_SEED = 0x4F52434C
"""A commit's checksum starts from this value, a record's from zero: a record (framed alike) inside a torn commit is
never taken for an intact commit, and a zero-length commit never checks out."""
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


@contextlib.contextmanager
def _named_failure(path: Path) -> Iterator[None]:
    """A full disk or a refused write raised as JournalError naming the file."""
    try:
        yield
    except OSError as exc:
        raise JournalError(f"{path}: cannot write ({exc.strerror}); free space or fix permissions, then restart") from exc


def _write_all(fd: int, data: bytes, path: Path, offset: int | None = None) -> None:
    with _named_failure(path):
        write_all(fd, data, offset)


def _write_atomic(path: Path, data: bytes) -> None:
    with _named_failure(path):
        replace_durably(path, data)


class FileStorage:
    """The journal file, its snapshot beside it, and a lock held while open for writing.

    With `read_only=True` nothing is created, locked or changed: for commands that
    only look at the ledger while another process may be running it.
    """

    blocking = True
    preallocates = hasattr(os, "posix_fallocate")

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
        self._end = 0
        """Where the next commit goes: the file's length until recovery cuts its zeros or torn tail (`truncate`)."""
        self._allocated = 0
        """The file's length, preallocated chunks included."""
        if read_only:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock = _acquire_lock(self.path.with_name(self.path.name + ".lock"))
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.chmod(self.path, 0o600)
            self._end = self._allocated = os.fstat(self._fd).st_size
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
        fd = self._writable()
        end = self._end + len(data)
        if end > self._allocated:
            self._allocated = self._preallocate(fd, end)
        _write_all(fd, data, self.path, self._end)
        self._end = end

    def _preallocate(self, fd: int, needed: int) -> int:
        """Grow the file to the next whole chunk past `needed`; the new length (just `needed` where the platform
        or the file system cannot preallocate, or the disk has no chunk to spare: the write itself may still fit)."""
        if not self.preallocates:
            return needed
        size = -(-needed // PREALLOCATE_BYTES) * PREALLOCATE_BYTES
        try:
            os.posix_fallocate(fd, self._allocated, size - self._allocated)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self.preallocates = False  # this file system never will: appended from now on, no call per commit
            return max(needed, os.fstat(fd).st_size)
        return size

    def sync(self) -> None:
        """fdatasync where the platform has it: the appended records (and the file's length, when a chunk was just
        preallocated: all recovery reads) reach the disk without the timestamps fsync writes too, about a tenth less
        per group commit on this project's machines (docs/BENCHMARKS.md); fsync elsewhere."""
        fd = self._writable()
        if hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:
            os.fsync(fd)

    def truncate(self, size: int) -> None:
        fd = self._writable()
        os.ftruncate(fd, size)
        os.fsync(fd)
        self._end = self._allocated = size

    def replace(self, data: bytes) -> None:
        self._writable()
        _write_atomic(self.path, data)
        os.close(self._writable())
        self._fd = os.open(self.path, os.O_RDWR, 0o600)
        self._end = self._allocated = len(data)

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


def lock_holder(journal_path: str | Path) -> int | None:
    """The pid of a running process that holds this journal for writing, or None (nobody does, or the platform does
    not say). Read from /proc/locks (Linux), never by trying the lock: a command that only looks must not make an
    orchestrator starting at that instant fail as if the journal were in use."""
    path = Path(journal_path)
    try:
        lock = os.stat(path.with_name(path.name + ".lock"))
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    ident = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    for line in table.splitlines():
        fields = line.split()  # "1: FLOCK ADVISORY WRITE pid major:minor:inode ..."; a waiter's has "->" second
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
            return int(fields[4])
    return None


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


def commit_frame(records: bytes) -> bytes:
    """One group commit's framed records (`frame`), framed and checksummed as a whole: what `append` is given."""
    return FRAME.pack(len(records), zlib.crc32(records, COMMIT_SEED)) + records


@attrs.frozen
class Recovered:
    """What a journal held: the snapshot (if any) and the entries after it."""

    snapshot: LedgerSnapshot | None
    entries: list[JournalEntry]


@attrs.frozen
class _Scan:
    """A journal's intact records, where they end, and what is wrong after them ("" when the log ends cleanly)."""

    records: list[tuple[int, bytes]]
    """(offset, the record with its frame) of each intact record."""
    end: int
    problem: str
    written: int
    """Where the bytes after `end` stop being anything but zeros (the preallocated space)."""


def recover(storage: Storage, where: str, *, read_only: bool = False) -> Recovered:
    """Read snapshot and journal, cutting a torn tail; raise JournalError on real damage.

    With `read_only`, nothing is written: a torn tail is skipped (and logged) but
    left in the file. Opened for writing, the file is cut where its
    log ends (the preallocated zeros go too, so the next commit follows the last), and
    a format-1 journal is rewritten as format 2.
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
        return Recovered(snapshot, [])
    if len(data) < len(HEADER):
        if HEADER.startswith(data) or HEADER_V1.startswith(data):
            log.warning("%s: torn journal header (%d bytes) rewritten", where, len(data))
            if not read_only:
                storage.replace(HEADER)
            return Recovered(snapshot, [])
        raise JournalError(f"{where}: not a ledger journal (bad magic)")
    if data[:8] != MAGIC:
        raise JournalError(f"{where}: not a ledger journal (bad magic {data[:8]!r})")
    version = struct.unpack(">H", data[8:10])[0]
    if version not in (1, VERSION):
        raise JournalError(f"{where}: journal format version {version}, this program reads versions 1 and {VERSION}")
    scan = _scan_commits(data, where) if version == VERSION else _scan_records(data)
    if scan.problem:
        unit, longest, seed = ("commit", len(data), COMMIT_SEED) if version == VERSION else ("record", MAX_RECORD, 0)
        if _intact_frame_after(data, scan.end + 1, scan.written, longest, seed):
            raise JournalError(
                f"{where}: corrupt {unit} at byte {scan.end} of {len(data)} ({scan.problem}) with intact {unit}s "
                "after it; refusing to drop what may be acknowledged operations. Restore the file from "
                f"a backup, or inspect it (the {unit}s after the damage are valid) before starting"
            )
        cut = scan.written - scan.end
        verb = "ignoring" if read_only else "cut"
        log.warning("%s: %s %d bytes of unacknowledged tail at byte %d (%s)", where, verb, cut, scan.end, scan.problem)
    if not read_only:
        if version != VERSION:
            storage.replace(HEADER + b"".join(commit_frame(record) for _, record in scan.records))
            log.info("%s: journal format 1 rewritten as format %d", where, VERSION)
        elif scan.end < len(data):
            storage.truncate(scan.end)
    floor = snapshot.seq if snapshot is not None else 0
    entries = [entry for entry in (_entry(record, offset, where) for offset, record in scan.records) if entry.seq > floor]
    return Recovered(snapshot, entries)


def _entry(record: bytes, offset: int, where: str) -> JournalEntry:
    try:
        entry = CODEC.decode(record[FRAME.size :])
    except CodecError as exc:
        raise JournalError(f"{where}: undecodable record at byte {offset}: {exc}") from None
    if not isinstance(entry, JournalEntry):
        raise JournalError(f"{where}: record at byte {offset} is not a journal entry")
    return entry


def _scan_records(data: bytes) -> _Scan:
    """Format 1: records framed one after another to the end of the file."""
    records = []
    offset = len(HEADER)
    while offset < len(data):
        payload, problem = _record_at(data, offset)
        if payload is None:
            return _Scan(records, offset, problem, len(data))
        end = offset + FRAME.size + len(payload)
        records.append((offset, data[offset:end]))
        offset = end
    return _Scan(records, offset, "", offset)


def _scan_commits(data: bytes, where: str) -> _Scan:
    """Format 2: commits until the preallocated zeros (or the end of the file)."""
    written = len(data.rstrip(b"\x00"))
    records = []
    offset = len(HEADER)
    while offset < written:
        body, problem = _record_at(data, offset, seed=COMMIT_SEED)
        if not body:
            return _Scan(records, offset, problem or "zeros where a commit should begin", written)
        start = offset + FRAME.size
        position = start
        while position < start + len(body):
            record, problem = _record_at(data, position, start + len(body))
            if record is None:
                raise JournalError(f"{where}: the commit at byte {offset} passed its checksum but its record at byte "
                                   f"{position} is broken ({problem}): written so by a faulty program, not a crash; "
                                   "restore the file from a backup")
            records.append((position, data[position : position + FRAME.size + len(record)]))
            position += FRAME.size + len(record)
        offset = start + len(body)
    return _Scan(records, offset, "", offset)


def _record_at(data: bytes, offset: int, limit: int | None = None, seed: int = 0) -> tuple[bytes | None, str]:
    """The intact payload framed at `offset` (ending by `limit`, the end of `data` if not given; its checksum
    started from `seed`), or None and what is wrong with it."""
    limit = len(data) if limit is None else limit
    if offset + FRAME.size > limit:
        return None, "torn frame header"
    length, crc = FRAME.unpack_from(data, offset)
    end = offset + FRAME.size + length
    if end > limit:
        return None, f"declared length {length} runs past the end"
    payload = data[offset + FRAME.size : end]
    if zlib.crc32(payload, seed) != crc:
        return None, "checksum mismatch"
    return payload, ""


def _intact_frame_after(data: bytes, start: int, stop: int, longest: int, seed: int) -> bool:
    """Whether a frame (a format-1 record, or a commit with `seed`) no longer than `longest` and whose checksum
    matches starts anywhere from `start` up to `stop` (where the zeros begin: a frame's length is not zero, so its
    header starts before them)."""
    for offset in range(start, min(stop, len(data) - FRAME.size)):
        length, _ = FRAME.unpack_from(data, offset)
        if 0 < length <= longest and _record_at(data, offset, seed=seed)[0] is not None:
            return True
    return False


def compact(storage: Storage, snapshot: LedgerSnapshot) -> None:
    """Snapshot the state, then start a fresh journal; a failure in either step loses nothing."""
    storage.write_snapshot(CODEC.encode(snapshot))
    storage.replace(HEADER)

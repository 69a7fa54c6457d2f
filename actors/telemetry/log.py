"""The segmented, append-only telemetry log.

A log is a directory of segment files `segment-<start µs>-<n>.log`. Each file starts
with the magic b"ORCHTLOG" and a format version, then framed records
[u32 length][u32 crc32][codec bytes]; the first record is a SegmentHeader (schema
version, the config's fingerprint, start time). Segments rotate by size. A reader
skips a torn last record (a crash mid-write) with a warning, and reports a corrupt
record in the middle of a segment while still reading every other segment; nothing
it cannot decode stops the rest of the log from being read.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from actors.errors import CodecError
from actors.fileio import write_all
from actors.telemetry.codec import CODEC
from actors.telemetry.events import DERIVED, RequestServed, SegmentHeader, expand

log = logging.getLogger(__name__)

MAGIC = b"ORCHTLOG"
VERSION = 1
SCHEMA = 2
"""2: a request's own steps are one RequestServed record (1: seven events, still read the same way)."""
FILE_HEADER = MAGIC + struct.pack(">H", VERSION)
FRAME = struct.Struct(">II")


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class SegmentWriter:
    """Appends framed records, rotating to a new segment past `segment_bytes`."""

    def __init__(self, directory: str | Path, segment_bytes: int, fingerprint: str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.segment_bytes = segment_bytes
        self.fingerprint = fingerprint
        self._fd: int | None = None
        self._size = 0
        self._count = 0
        self.written = 0

    def _open_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        started = time.time()
        self._count += 1
        path = self.dir / f"segment-{int(started * 1e6):020d}-{self._count:06d}.log"
        self._fd = None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        header = FILE_HEADER + frame(CODEC.encode(SegmentHeader(SCHEMA, self.fingerprint, started, self._count)))
        try:
            write_all(fd, header)
        except OSError:  # a segment without its header would be reported as damage: none rather than that
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._size = len(header)

    def write(self, framed: bytes, records: int) -> None:
        """Append whole frames or none: a write that fails part-way (a full disk) is cut back off, so the records
        written once space returns are not read as the tail of a torn one (the reader would lose them all)."""
        if self._fd is None or self._size >= self.segment_bytes:
            self._open_segment()
        assert self._fd is not None
        try:
            write_all(self._fd, framed)
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:  # the cut failed too: the next record starts a segment, this one ends torn
                os.close(self._fd)
                self._fd = None
            raise
        self._size += len(framed)
        self.written += records

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


@attrs.frozen
class Problem:
    segment: str
    offset: int
    what: str


@attrs.define
class LogReader:
    """Reads every segment of a log directory in order; `problems` says what was skipped."""

    directory: Path
    problems: list[Problem] = attrs.Factory(list)
    headers: list[SegmentHeader] = attrs.Factory(list)
    records: int = 0

    def segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("segment-*.log"))

    def payloads(self) -> Iterator[bytes]:
        """The raw codec bytes of every record, segment headers excluded (counted in `records`)."""
        for path in self.segments():
            for payload in self._read_segment(path):
                self.records += 1
                yield payload

    def events(self) -> Iterator[object]:
        """Every event, a RequestServed record as the per-step events it stands for (`events.expand`)."""
        for payload in self.payloads():
            event = self._decode(payload, CODEC.decode)
            if isinstance(event, RequestServed):
                yield from expand(event)
            elif event is not None:
                yield event

    def events_of(self, *kinds: type, trusted: bool = False) -> Iterator[Any]:
        """The events of these kinds only: a record is decoded only if its tag says it holds one.

        `trusted` skips the per-field type checks (`Codec.decode_trusted`), for
        reading large logs fast: each record's checksum already vouches for its bytes.
        """
        wanted = frozenset(CODEC.tag_of(kind) for kind in kinds)
        served = CODEC.tag_of(RequestServed) if DERIVED.intersection(kinds) else None
        decode = CODEC.decode_trusted if trusted else CODEC.decode
        for payload in self.payloads():
            tag = CODEC.peek_tag(payload)
            if tag in wanted:
                event = self._decode(payload, decode)
                if event is not None:
                    yield event
            elif tag == served and tag is not None:
                record = self._decode(payload, decode)
                if record is not None:
                    yield from (event for event in expand(record) if type(event) in kinds)

    def _decode(self, payload: bytes, decode: Callable[[bytes], Any]) -> Any:
        try:
            return decode(payload)
        except CodecError as exc:
            self.problems.append(Problem("?", 0, f"undecodable event: {exc}"))
            return None

    def _read_segment(self, path: Path) -> Iterator[bytes]:
        data = path.read_bytes()
        if data[: len(MAGIC)] != MAGIC:
            self.problems.append(Problem(path.name, 0, "not a telemetry segment (bad magic)"))
            return
        version = struct.unpack(">H", data[len(MAGIC) : len(FILE_HEADER)])[0] if len(data) >= len(FILE_HEADER) else -1
        if version != VERSION:
            self.problems.append(Problem(path.name, 0, f"unsupported segment version {version}"))
            return
        offset = len(FILE_HEADER)
        first = True
        while offset < len(data):
            if offset + FRAME.size > len(data):
                self._torn(path, offset, len(data))
                return
            length, crc = FRAME.unpack_from(data, offset)
            end = offset + FRAME.size + length
            if end > len(data):
                self._torn(path, offset, len(data))
                return
            payload = data[offset + FRAME.size : end]
            if zlib.crc32(payload) != crc:
                if end == len(data):
                    self._torn(path, offset, len(data))
                    return
                self.problems.append(Problem(path.name, offset, "corrupt record (checksum mismatch); skipped"))
                offset = end
                continue
            offset = end
            if first:
                first = False
                try:
                    header = CODEC.decode(payload)
                except CodecError:
                    header = None
                if isinstance(header, SegmentHeader):
                    self.headers.append(header)
                    continue
            yield payload

    def _torn(self, path: Path, offset: int, size: int) -> None:
        log.warning("%s: skipped a torn last record (%d bytes at offset %d)", path.name, size - offset, offset)
        self.problems.append(Problem(path.name, offset, "torn last record skipped"))


def read_events(directory: str | Path) -> Iterator[object]:
    return LogReader(Path(directory)).events()

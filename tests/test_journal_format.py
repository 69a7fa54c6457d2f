"""The journal's format 2: commits checksummed whole, a preallocated file, format 1 read and rewritten."""

from __future__ import annotations

import errno
import logging
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import JournalError
from actors.ledger import journal
from actors.ledger.actor import open_core, open_read_only
from actors.ledger.core import LedgerCore, snapshot_of
from actors.ledger.journal import HEADER, HEADER_V1, FileStorage, MemoryStorage, commit_frame, frame, recover
from actors.ledger.messages import JournalEntry
from actors.ledger.settings import LedgerSettings
from tests.test_journal import entries, reserve_and_settle, settings_in

SETTINGS = LedgerSettings(limit_nd=10**9)


def commits(groups: list[list[JournalEntry]]) -> list[bytes]:
    return [commit_frame(b"".join(map(frame, group))) for group in groups]


def memory_with(data: bytes) -> MemoryStorage:
    storage = MemoryStorage()
    storage.append(data)
    storage.sync()
    return storage


def seqs(storage: journal.Storage) -> list[int]:
    return [entry.seq for entry in recover(storage, "journal", read_only=True).entries]


def test_commits_go_into_preallocated_space_and_a_reopening_resumes_after_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(journal, "PREALLOCATE_BYTES", 4096)
    path = tmp_path / "journal"
    storage = FileStorage(path, tmp_path)
    recover(storage, "journal")
    written = entries(60)
    framed = commits([written[:1], written[1:40], written[40:]])
    for commit in framed:
        storage.append(commit)
        storage.sync()
    storage.close()
    data = path.read_bytes()
    log = HEADER + b"".join(framed)
    assert data.startswith(log) and not data[len(log) :].strip(b"\x00")
    if FileStorage.preallocates:
        assert len(data) % 4096 == 0 and len(data) > len(log) > 4096, "the file grew by whole chunks, zeros after the log"
    assert seqs(FileStorage(path, tmp_path, read_only=True)) == [e.seq for e in written]
    assert path.read_bytes() == data, "a reader cuts nothing"

    storage = FileStorage(path, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert len(recover(storage, "journal").entries) == 120
    assert not caplog.records, "the preallocated zeros are the log's clean end, not damage"
    assert path.read_bytes() == log, "opened to write: cut where the log ends"
    storage.append(commits([entries(61)[120:]])[0])
    storage.sync()
    storage.close()
    assert seqs(FileStorage(path, tmp_path, read_only=True)) == list(range(1, 123)), "the next commit followed the last"


def test_a_journal_that_is_exactly_its_log_is_appended_to_after_its_last_commit(tmp_path: Path) -> None:
    """No zeros after the log (a disk that had no chunk to spare, a copy, an older writer): reopened, the next commit
    goes after the last, not over the header; and a journal left readable by others is made owner-only again."""
    path = tmp_path / "journal"
    path.write_bytes(HEADER + commits([entries(2)])[0])
    path.chmod(0o644)
    storage = FileStorage(path, tmp_path)
    assert len(recover(storage, "journal").entries) == 4
    storage.append(commits([entries(3)[4:]])[0])
    storage.sync()
    storage.close()
    assert seqs(FileStorage(path, tmp_path, read_only=True)) == [1, 2, 3, 4, 5, 6]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_disk_with_no_chunk_to_spare_still_takes_the_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal.os, "posix_fallocate", full, raising=False)
    monkeypatch.setattr(FileStorage, "preallocates", True)
    storage = FileStorage(tmp_path / "journal", tmp_path)
    recover(storage, "journal")
    storage.append(commits([entries(2)])[0])
    storage.sync()
    storage.close()
    data = (tmp_path / "journal").read_bytes()
    assert data == HEADER + commits([entries(2)])[0], "no zeros: the file is exactly its log"


def test_a_file_system_that_cannot_preallocate_is_appended_to_without_asking_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def unsupported(fd: int, offset: int, length: int) -> None:
        calls.append(offset)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(journal.os, "posix_fallocate", unsupported, raising=False)
    monkeypatch.setattr(FileStorage, "preallocates", True)
    storage = FileStorage(tmp_path / "journal", tmp_path)
    recover(storage, "journal")
    framed = commits([[e] for e in entries(3)])
    for commit in framed:
        storage.append(commit)
        storage.sync()
    storage.close()
    assert len(calls) == 1, "asked once, not once per commit"
    assert (tmp_path / "journal").read_bytes() == HEADER + b"".join(framed)


def test_a_commit_the_disk_wrote_out_of_order_is_a_torn_tail_not_corruption(caplog: pytest.LogCaptureFixture) -> None:
    """A crash mid-commit can leave a later block of it on disk and an earlier one not (zeros, in preallocated space):
    the records after the hole are intact, but their commit is not, so it was never acknowledged."""
    written = entries(10)
    first, last = commits([written[:8], written[8:]])
    torn = bytearray(last)
    torn[: journal.FRAME.size + 10] = bytes(journal.FRAME.size + 10)
    storage = memory_with(HEADER + first + bytes(torn) + bytes(4096))
    with caplog.at_level(logging.WARNING):
        recovered = recover(storage, "journal")
    assert [e.seq for e in recovered.entries] == [e.seq for e in written[:8]]
    assert "unacknowledged tail" in caplog.text
    assert storage.read() == HEADER + first, "cut where the intact commits end"


def test_a_bad_commit_with_an_intact_one_after_it_refuses_to_start() -> None:
    written = entries(6)
    first, second, third = commits([written[:4], written[4:8], written[8:]])
    for damaged in (bytes(len(second)), second[:20] + bytes([second[20] ^ 0xFF]) + second[21:]):
        storage = memory_with(HEADER + first + damaged + third + bytes(100))
        with pytest.raises(JournalError, match=rf"corrupt commit at byte {len(HEADER) + len(first)} .* intact commits after"):
            recover(storage, "journal")
        assert storage.read() == HEADER + first + damaged + third + bytes(100), "nothing was cut"


def test_a_commit_whose_records_do_not_parse_is_refused_not_cut() -> None:
    body = frame(entries(1)[0])
    broken = body[:-1] + bytes([body[-1] ^ 0xFF])
    storage = memory_with(HEADER + commit_frame(broken))
    with pytest.raises(JournalError, match="^journal: the commit at byte 16 passed its checksum but its record at byte 24 is broken"):
        recover(storage, "journal")


def test_a_record_or_snapshot_of_another_message_is_refused_naming_where() -> None:
    """Checksummed and decodable, but not what the ledger writes (another program's file, a bug): refused typed, never
    applied as if it were an entry."""
    snapshot = journal.CODEC.encode(snapshot_of(LedgerCore(SETTINGS)))
    storage = memory_with(HEADER + commit_frame(journal.FRAME.pack(len(snapshot), zlib.crc32(snapshot)) + snapshot))
    with pytest.raises(JournalError, match=rf"^journal: record at byte {len(HEADER) + journal.FRAME.size} is not a journal entry"):
        recover(storage, "journal")
    storage = memory_with(HEADER)
    storage.write_snapshot(journal.CODEC.encode(entries(1)[0]))
    with pytest.raises(JournalError, match=r"^journal\.snapshot: not a ledger snapshot"):
        recover(storage, "journal")


def test_a_header_torn_at_creation_starts_an_empty_journal_and_anything_else_that_short_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for torn in (HEADER[:5], HEADER_V1[:9]):
        storage = memory_with(torn)
        with caplog.at_level(logging.WARNING):
            assert recover(storage, "journal").entries == []
        assert storage.read() == HEADER and "torn journal header" in caplog.text
    with pytest.raises(JournalError, match=r"^journal: not a ledger journal \(bad magic\)$"):
        recover(memory_with(b"PK\x03"), "journal")


def test_a_format_1_journal_is_read_as_it_is_and_rewritten_as_format_2_when_opened_to_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written = entries(5)
    old = HEADER_V1 + b"".join(map(frame, written))
    path = tmp_path / "journal"
    path.write_bytes(old + frame(entries(6)[10])[:-4])
    settings = settings_in(tmp_path)
    assert open_read_only(settings).status().settled_nd == 5 * 60
    assert path.read_bytes() == old + frame(entries(6)[10])[:-4], "a reader changes no byte of the old format"

    storage = FileStorage(path, tmp_path)
    with caplog.at_level(logging.INFO):
        core = open_core(settings, storage)
    storage.append(commits([entries(6)[10:]])[0])
    storage.sync()
    storage.close()
    assert core.status().settled_nd == 5 * 60 and "format 1 rewritten as format 2" in caplog.text
    data = path.read_bytes()
    assert data.startswith(HEADER) and data[: len(HEADER)] != HEADER_V1
    assert seqs(memory_with(data)) == [e.seq for e in written] + [11, 12]


def test_a_format_1_journal_with_damage_in_the_middle_is_refused_as_before() -> None:
    data = bytearray(HEADER_V1 + b"".join(map(frame, entries(4))))
    data[len(HEADER) + 20] ^= 0xFF
    with pytest.raises(JournalError, match=r"corrupt record at byte 16 .* intact records after it"):
        recover(memory_with(bytes(data)), "journal")


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=8),
    cut=st.integers(0, 10_000),
    holes=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 40)), max_size=3),
    zeros=st.integers(0, 3000),
)
def test_recovery_keeps_every_whole_commit_and_nothing_of_a_damaged_last_one(
    sizes: list[int], cut: int, holes: list[tuple[int, int]], zeros: int
) -> None:
    """Whatever a crash leaves of the last commit (cut short, holes of zeros where blocks never reached the disk,
    preallocated zeros after it), recovery keeps exactly the commits before it and never refuses to start."""
    written = entries(sum(sizes))[: sum(sizes)]
    groups, start = [], 0
    for size in sizes:
        groups.append(written[start : start + size])
        start += size
    framed = commits(groups)
    last = bytearray(framed[-1][: cut % (len(framed[-1]) + 1)])
    for at, length in holes:
        if last:
            position = at % len(last)
            last[position : position + length] = bytes(len(last[position : position + length]))
    whole = bytes(last) == framed[-1]
    storage = memory_with(HEADER + b"".join(framed[:-1]) + bytes(last) + bytes(zeros))
    recovered = recover(storage, "journal")
    kept = written if whole else written[: len(written) - len(groups[-1])]
    assert [e.seq for e in recovered.entries] == [e.seq for e in kept]
    assert storage.read() == HEADER + b"".join(framed if whole else framed[:-1]), "cut exactly where the log ends"


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="preallocation needs posix_fallocate")
def test_the_ledgers_own_commits_preallocate(tmp_path: Path) -> None:
    """The actor's journal, end to end: a file opened by the ledger is preallocated, and what it wrote recovers."""
    settings = settings_in(tmp_path)
    reserve_and_settle(settings, 20)
    assert (tmp_path / "journal").stat().st_size == journal.PREALLOCATE_BYTES
    assert open_read_only(settings).status().settled_nd == 20 * 40

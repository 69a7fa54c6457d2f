"""Files that must survive a crash: every byte, owner-only, the old contents or the new one."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from actors.fileio import replace_durably
from actors.ledger import unsent
from actors.ledger.messages import Hold, Release, Settle


def record_syncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every fsync (by the path of its file or directory) and every rename (by its target), in order, from now on."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: str | Path, target: str | Path) -> None:
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_replacement_is_synced_before_its_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old")
    events = record_syncs(monkeypatch)
    replace_durably(target, b"new contents")
    assert events == [("fsync", str(tmp_path / f"state.{os.getpid()}.tmp")), ("replace", str(target)),
                      ("fsync", str(tmp_path))]
    assert target.read_bytes() == b"new contents" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_short_writes_still_write_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    replace_durably(tmp_path / "state", bytes(range(256)) * 4)
    assert (tmp_path / "state").read_bytes() == bytes(range(256)) * 4


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_replacement_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, full_disk)
    with pytest.raises(OSError, match="No space"):
        replace_durably(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_unsent_closings_come_back_in_order_from_owner_only_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "ledger"
    events = record_syncs(monkeypatch)
    first = unsent.save(directory, [Settle("a", 300, 10, 20), Release("b")])
    assert events[-1] == ("fsync", str(directory)), "the rename reaches the disk"
    second = unsent.save(directory, [Hold("c")])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (first, second))
    closings, files = unsent.load(directory)
    assert sorted(files) == sorted([first, second])
    by_file = {first: [Settle("a", 300, 10, 20), Release("b")], second: [Hold("c")]}
    assert closings == [c for path in sorted(files) for c in by_file[path]]
    unsent.discard([*files, tmp_path / "gone"])
    assert list(directory.iterdir()) == []


def test_a_damaged_unsent_file_is_named_and_left_while_the_others_are_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "ledger"
    kept = unsent.save(directory, [Settle("a", 300)])
    damaged = directory / f"{unsent.PREFIX}0-damaged"
    damaged.write_bytes(b"\x93not msgpack of ours")
    (directory / f"{unsent.PREFIX}0-half.0.tmp").write_bytes(b"a write that never finished")
    with caplog.at_level(logging.ERROR):
        closings, files = unsent.load(directory)
    assert closings == [Settle("a", 300)] and files == [kept]
    assert str(damaged) in caplog.text and damaged.exists(), "left in place for a person to look at"
    assert "half" not in caplog.text, "a temp file is a write in progress or abandoned, not damage"

"""The content memo: found by content, fast for the object last seen, least recently used out first."""

from __future__ import annotations

import pytest

from actors.memo import ContentMemo
from actors.messages import ArcPair, ArcTask


def task(task_id: str) -> ArcTask:
    """A fresh object each call: equal by content to every other call with the same id."""
    return ArcTask(task_id, (ArcPair(((1, 2), (3, 4)), ((4, 3), (2, 1))),), (((0, 1),),))


@pytest.fixture
def equality_tests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts ArcTask equality tests (the grid walks the memo exists to avoid)."""
    made = [0]
    compare = ArcTask.__eq__

    def counted(self: ArcTask, other: object) -> bool:
        made[0] += 1
        return compare(self, other)

    monkeypatch.setattr(ArcTask, "__eq__", counted)
    return made


def test_an_equal_task_finds_what_its_twin_left_and_is_then_found_by_identity(equality_tests: list[int]) -> None:
    memo: ContentMemo[str] = ContentMemo(8)
    memo.put(task("a"), "prompt a")
    twin = task("a")
    assert memo.get(twin) == "prompt a"
    seen = equality_tests[0]
    assert seen > 0
    for _ in range(5):
        assert memo.get(twin) == "prompt a"
    assert equality_tests[0] == seen
    assert len(memo) == 1


def test_the_least_recently_used_task_goes_first() -> None:
    memo: ContentMemo[int] = ContentMemo(2)
    memo.put(task("a"), 1)
    memo.put(task("b"), 2)
    assert memo.get(task("a")) == 1
    memo.put(task("c"), 3)
    assert memo.get(task("b")) is None
    assert memo.get(task("a")) == 1
    assert memo.get(task("c")) == 3


def test_putting_a_known_task_again_replaces_its_value_and_refreshes_it() -> None:
    memo: ContentMemo[int] = ContentMemo(2)
    memo.put(task("a"), 1)
    memo.put(task("b"), 2)
    memo.put(task("a"), 10)
    memo.put(task("c"), 3)
    assert memo.get(task("a")) == 10
    assert memo.get(task("b")) is None

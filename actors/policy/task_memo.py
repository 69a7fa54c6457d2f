"""What was computed for an ARC task (or a prompt's text), remembered by its content.

The router renders a task's prompt and the estimators score its grids once per
task, not once per request: a GA asks about the same tasks again and again. Tasks
are equal by content, so a task decoded from a log or rebuilt by a caller finds
what its twin left; but testing two tasks for equality walks every cell of every
grid (about 3 µs for the bundled tasks, docs/BENCHMARKS.md), and a dict only skips that test when
the key is the very object stored. So a hit under an equal but different object
re-files the entry under that object, and the caller's next lookups with it cost
an identity test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

_V = TypeVar("_V")


class TaskMemo(Generic[_V]):
    """A least-recently-used map from ARC tasks (or other content keys) to what was computed for them."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[Hashable, tuple[Hashable, _V]] = OrderedDict()
        self._size = size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> _V | None:
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            return None
        if entry[0] is key:
            entries.move_to_end(key)
        else:
            del entries[key]
            entries[key] = (key, entry[1])
        return entry[1]

    def put(self, key: Hashable, value: _V) -> None:
        self._entries[key] = (key, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

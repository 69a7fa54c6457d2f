"""What was computed for an ARC task (or a prompt), remembered by its content, by the object that computed it.

The router renders a task's prompt and hashes a prompt's cache-key prefix, and the
estimators score a task's grids, once per task or prompt, not once per request: a GA
asks about the same tasks again and again. Each memo belongs to its owner (a router,
an estimator), not to the module, so two engines in one process share nothing and a
closed engine's memos go with it. Tasks are equal by content, so a task decoded from
a log or rebuilt by a caller finds what its twin left; but testing two tasks for
equality walks every cell of every grid (about 3 µs for the bundled tasks,
docs/BENCHMARKS.md), and a dict only skips that test when the key is the very object
stored. So a hit under an equal but different object re-files the entry under that
object, and the caller's next lookups with it cost an identity test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

_V = TypeVar("_V")


class ContentMemo(Generic[_V]):
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

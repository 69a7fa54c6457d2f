"""Hypothesis strategies derived from message annotations, so every registered message is covered."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attrs
from hypothesis import strategies as st

INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)
FLOAT = st.floats(allow_nan=False)


def for_hint(hint: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is type(None) or hint is None:
        return st.none()
    if hint is bool:
        return st.booleans()
    if hint is int:
        return INT
    if hint is float:
        return FLOAT
    if hint is str:
        return st.text(max_size=20)
    if hint is bytes:
        return st.binary(max_size=20)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if isinstance(hint, type) and attrs.has(hint):
        return for_message(hint, depth + 1)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([for_hint(a, depth) for a in args])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(for_hint(args[0], depth), max_size=3 if depth < 2 else 0).map(tuple)
        return st.tuples(*(for_hint(a, depth) for a in args))
    if origin is dict:
        return st.dictionaries(for_hint(args[0], depth), for_hint(args[1], depth), max_size=3)
    raise TypeError(f"no strategy for {hint!r}")


def _valid_request_fields() -> dict[str, st.SearchStrategy[Any]]:
    """Requests validate their ranges on construction, so their strategies stay inside them."""
    from actors.messages import ChatMessage
    from actors.validation import MAX_DEADLINE_S, MAX_TOKENS, ROLES

    finite = st.floats(allow_nan=False, allow_infinity=False)
    return {
        "messages": st.lists(
            st.builds(ChatMessage, role=st.sampled_from(sorted(ROLES)), content=st.text(max_size=20)), max_size=3
        ).map(tuple),
        "request_id": st.text(min_size=1, max_size=20),
        "max_tokens": st.none() | st.integers(1, MAX_TOKENS),
        "temperature": st.none() | st.floats(0.0, 2.0),
        "top_p": st.none() | st.floats(0.0, 1.0, exclude_min=True),
        "stop": st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
        "sample_index": st.none() | st.integers(0, 2**31 - 1),
        "stagnation": st.integers(0, 2**31 - 1),
        "score": st.none() | st.floats(0.0, 1.0),
        "features": st.none() | st.dictionaries(st.text(max_size=5), finite, max_size=3),
        "cache_ttl_s": st.none() | st.floats(0.0, 1e9, exclude_min=True),
        "deadline_s": st.none() | st.floats(0.0, MAX_DEADLINE_S, exclude_min=True),
        "attempt_timeout_s": st.none() | st.floats(0.0, MAX_DEADLINE_S, exclude_min=True),
    }


def for_message(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: for_hint(hints[f.name], depth) for f in attrs.fields(cls)}
    if cls.__name__ == "Request":
        fields.update(_valid_request_fields())
    return st.builds(cls, **fields)

"""Typed reading of a parsed YAML document, where every error names file, key path and value.

A user who mistypes a price should read `configs/x.yaml: model_tiers.tier_2.cost_input:
must be a number ≥ 0, got "cheap"`, not a traceback from deep inside the loader.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from typing import Any

import orjson

from actors.errors import ConfigError

_MISSING = object()


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return False
    return True


def show(value: object) -> str:
    """Render a config value the way the user wrote it (strings in double quotes)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


class Node:
    """A value in the document with the file, line and dotted key path it came from."""

    __slots__ = ("value", "file", "path", "line")

    def __init__(self, value: Any, file: str, path: str = "", line: int = 0) -> None:
        self.value = value
        self.file = file
        self.path = path
        self.line = line

    @property
    def where(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.path}" if self.path else place

    def error(self, expected: str) -> ConfigError:
        return ConfigError(f"{self.where}: {expected}, got {show(self.value)}")

    def missing(self, key: str) -> ConfigError:
        where = f"{self.path}.{key}" if self.path else key
        place = f"{self.file}:{self.line}" if self.line else self.file
        return ConfigError(f"{place}: {where}: required key is missing")

    def child(self, key: str, value: Any) -> Node:
        origins = getattr(self.value, "origins", None)
        file, line = origins.get(key, (self.file, 0)) if origins else (self.file, 0)
        return Node(value, file, f"{self.path}.{key}" if self.path else key, line)

    # -- structure ----------------------------------------------------------------

    def mapping(self) -> dict[str, Any]:
        if self.value is None:
            return {}
        if not isinstance(self.value, dict):
            raise self.error("must be a mapping")
        return self.value

    def has(self, key: str) -> bool:
        return self.value is not None and key in self.mapping()

    def get(self, key: str, default: Any = _MISSING) -> Node:
        data = self.mapping()
        if key not in data:
            if default is _MISSING:
                raise self.missing(key)
            return self.child(key, default)
        return self.child(key, data[key])

    def items(self) -> Iterator[tuple[str, Node]]:
        for key, value in self.mapping().items():
            if not isinstance(key, str):
                raise self.error(f"keys must be strings (found {show(key)})")
            yield key, self.child(key, value)

    def sequence(self) -> list[Node]:
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error("must be a list")
        return [self.child(f"[{i}]", v) for i, v in enumerate(self.value)]

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.mapping():
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.child(str(key), self.mapping()[key]).error(
                    f"unknown key ({hint}expected one of: {', '.join(sorted(known))})"
                )

    # -- scalars -----------------------------------------------------------------

    def number(self, *, minimum: float | None = 0.0, maximum: float | None = None) -> float:
        value = self.value
        if isinstance(value, str) and _looks_numeric(value):
            raise self.error(self._range_text("a number", minimum, maximum) + " (it is quoted or not a YAML number: "
                             "write it unquoted, e.g. 1.0e+3 or 100)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(self._range_text("a number", minimum, maximum))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(self._range_text("a number", minimum, maximum))
        return float(value)

    def integer(self, *, minimum: int | None = 0, maximum: int | None = None) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(self._range_text("an integer", minimum, maximum))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(self._range_text("an integer", minimum, maximum))
        return value

    def text(self, *, allow_empty: bool = False) -> str:
        if not isinstance(self.value, str) or (not allow_empty and not self.value.strip()):
            raise self.error("must be a non-empty string" if not allow_empty else "must be a string")
        return self.value

    def flag(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error("must be true or false")
        return self.value

    def choice(self, choices: tuple[str, ...]) -> str:
        if self.value not in choices:
            raise self.error(f"must be one of {', '.join(choices)}")
        return str(self.value)

    def optional(self) -> Node | None:
        return None if self.value is None else self

    @staticmethod
    def _range_text(kind: str, minimum: float | None, maximum: float | None) -> str:
        if minimum is not None and maximum is not None:
            return f"must be {kind} between {_bound(minimum)} and {_bound(maximum)}"
        if minimum is not None:
            return f"must be {kind} ≥ {_bound(minimum)}"
        if maximum is not None:
            return f"must be {kind} ≤ {_bound(maximum)}"
        return f"must be {kind}"


def _bound(value: float) -> str:
    """A range's bound as people write it: 1000000000, not 1e+09; 0.001 as is."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"

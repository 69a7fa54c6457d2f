"""Deterministic completions: the same request and seed always give the same text.

Token counting follows one documented rule, the same for every wire format:
a message costs ceil(len(content) / 4) + 4 tokens; a completion ceil(len(text) / 4).
The ledger's upper bound (UTF-8 bytes + overhead) is always at or above this.
"""

from __future__ import annotations

import hashlib
import math

_PROGRAMS = (
    "def transform(grid):\n    return [row[:] for row in grid]\n",
    "def transform(grid):\n    return [row[::-1] for row in grid]\n",
    "def transform(grid):\n    return [row[:] for row in grid[::-1]]\n",
    "def transform(grid):\n    return [list(col) for col in zip(*grid)]\n",
    "def transform(grid):\n    return [list(col) for col in zip(*grid[::-1])]\n",
    "def transform(grid):\n    colors = sorted({c for row in grid for c in row})\n"
    "    swap = {a: b for a, b in zip(colors, colors[::-1])}\n"
    "    return [[swap[c] for c in row] for row in grid]\n",
    "def transform(grid):\n    h, w = len(grid), len(grid[0])\n"
    "    return [[grid[r % h][c % w] for c in range(2 * w)] for r in range(2 * h)]\n",
    "def transform(grid):\n    return [[c for c in row if c] or [0] for row in grid]\n",
)
_WORDS = (
    "refactor the loop", "add a guard clause", "extract a helper", "cache the result",
    "validate the input", "handle the empty case", "rename for clarity", "add a unit test",
    "close the file", "log the failure", "check the bounds", "sort before merging",
)


def prompt_tokens(messages: list[tuple[str, str]]) -> int:
    return sum(math.ceil(len(content) / 4) + 4 for _, content in messages)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def digest(seed: int, model: str, messages: list[tuple[str, str]], params: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{seed}\x00{model}\x00{params}".encode())
    for role, content in messages:
        h.update(b"\x01" + role.encode() + b"\x02" + content.encode())
    return h.digest()


def completion_text(key: bytes, messages: list[tuple[str, str]], model: str) -> str:
    pick = int.from_bytes(key[:8], "big")
    if any("def transform" in content for _, content in messages):
        return _PROGRAMS[pick % len(_PROGRAMS)]
    words = [_WORDS[(pick >> (4 * i)) % len(_WORDS)] for i in range(4 + pick % 12)]
    return f"[{model}] " + "; ".join(words) + "."


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """At most max_tokens tokens of text, and whether it had to be cut."""
    if text_tokens(text) <= max_tokens:
        return text, False
    return text[: max_tokens * 4], True

"""Plain-text tables and a progress bar for the terminal, with no extra dependency."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """Columns aligned; numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _is_number(value: object) -> bool:
    if isinstance(value, (int, float)):
        return True
    text = str(value).replace("$", "").replace("%", "").replace(",", "").replace("ms", "").strip()
    try:
        float(text)
    except ValueError:
        return False
    return True


class ProgressBar:
    """A one-line bar on stderr, redrawn at most ten times a second; silent when not a TTY."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.failed = 0
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self._last = 0.0
        self._started = time.monotonic()

    def advance(self, ok: bool = True) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        filled = int(self.width * self.done / self.total)
        rate = self.done / max(now - self._started, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f" {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {rate:.0f}/s{failed}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

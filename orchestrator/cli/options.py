"""Argument types that check their range while parsing.

A value out of range is refused by argparse itself: one line on stderr naming the
option and the allowed range, exit status 2, before any work (or money) is spent.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: from {low} to {high}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(low: float, high: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from `low` (or above it, with `above`) to `high`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (above and value == low) or value > high:
            lower = f"above {low:g}" if above else f"from {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: {lower} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse


PORT = int_range(0, 65535)
"""A TCP port; 0 asks the system for a free one."""

SECONDS = float_range(0.0, 86_400.0)
"""A duration in seconds, from 0 to a day."""

POSITIVE_SECONDS = float_range(0.0, 86_400.0, above=True)
"""A duration in seconds above 0, up to a day."""


def bind_error(exc: OSError, host: str, port: int) -> OSError:
    """`exc`, raised while binding a server, as an OSError that names the address it could not take."""
    error = OSError(exc.errno, exc.strerror or str(exc))
    error.filename = f"{host}:{port}"
    return error


EXIT_INTERRUPTED = 130
"""A command stopped by SIGINT or SIGTERM before its work was done (its partial results are printed)."""


def written_over(out: Path, inputs: Iterable[Path]) -> Path | None:
    """The input that writing `out` would replace (the same file by any path to it), or None.

    `calibrate --config mine.yaml --out mine.yaml` replaced the configuration with a file
    extending itself, and `routing subset --data t.csv --out t.csv` the table with one of
    its folds: the input was gone and the output unusable.
    """
    for source in inputs:
        try:
            if os.path.samefile(out, source):
                return source
        except OSError:  # either does not exist yet: nothing to replace
            continue
    return None

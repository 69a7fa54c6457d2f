"""Argument types that check their range while parsing.

A value out of range is refused by argparse itself: one line on stderr naming the
option and the allowed range, exit status 2, before any work (or money) is spent.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


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


PORT = int_range(0, 65535)
"""A TCP port; 0 asks the system for a free one."""

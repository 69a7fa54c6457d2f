"""Waking a batch writer: at once for work someone waits on, after a linger for work nobody does.

The journaled ledger, the PostgreSQL ledger and the cache each gather work into
batches written by one task. Work an asker waits on (a reserve, a lookup) must go at
once; work nobody waits on (a told settle, a cache store) is better carried by the
next urgent batch, or written alone once it has waited `linger_s`, so a request costs
one write, not two back to back (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import anyio

from actors.runtime.signal import Signal


class Doorbell:
    """One batch writer waits; anyone rings. Its wake-ups are `Signal`s, the writer being their one waiter."""

    __slots__ = ("_rung", "_urgent")

    def __init__(self) -> None:
        self._rung = Signal()
        self._urgent = Signal()

    def ring(self, *, urgent: bool) -> None:
        if urgent:
            self._urgent.set()
        self._rung.set()

    async def wait(self, linger_s: float) -> None:
        """Return once rung: at once if urgently, else when rung urgently or `linger_s` has passed."""
        await self._rung.wait()
        self._rung = Signal()
        if not self._urgent.is_set():
            with anyio.move_on_after(linger_s):
                await self._urgent.wait()
        self._urgent = Signal()

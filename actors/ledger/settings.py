"""Settings of the budget ledger. All money in integer nanodollars."""

from __future__ import annotations

import attrs

from actors.ledger.pacing import PacingPlan


@attrs.frozen
class LedgerSettings:
    limit_nd: int
    daily_limit_nd: int | None = None
    monthly_limit_nd: int | None = None
    tier_caps_nd: dict[str, int] = attrs.field(factory=dict)
    warning_thresholds: tuple[float, ...] = (0.8,)
    safety_margin_ppm: int = 0
    journal_path: str | None = None
    state_dir: str | None = None
    group_commit: bool = True
    snapshot_every: int = 100_000
    closed_memory: int = 100_000
    """How many closed reservation ids are remembered (idempotency and audit); ~250 B each."""
    backend: str = "journal"
    """"journal" (this process's file, or memory), or "postgres" (one ledger shared by many processes)."""
    dsn: str | None = attrs.field(default=None, repr=False)
    """The PostgreSQL connection string; it may hold a password, so it is never shown."""
    wait_s: float = 60.0
    """How long a reservation may wait for money other requests hold reserved (bounded by its deadline)."""
    lease_s: float = 60.0
    """How long a process's open reservations stay its own after its last heartbeat (postgres)."""
    inline_write_s: float = 0.002
    """A journal write (append and fsync) runs on the event loop while each one there takes less than this; one
    that takes longer sends the next 32 x 2^k to a worker thread before the loop is tried again
    (`actors/runtime/inline_io.py`); 0: always in a worker thread."""
    pacing: PacingPlan | None = None
    """Allotments per run, generation and purpose (docs/LEDGER.md, "pacing"); None: no pacing."""

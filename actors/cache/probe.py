"""Answering a cache lookup on the event loop, without a thread hop or a message.

Most lookups of a GA run miss (every new sample is a new key), and handing each to
the store's worker thread put a thread hop and its wake-up on the request's path. A
key lookup in SQLite's primary-key index takes microseconds, so the cache client
first reads the entry through a read-only connection of its own. A definite "not
stored" is a miss answered here; a live entry is a hit answered here (the client
tells the actor to count it and raise its priority: the actor stays the only
writer). An expired entry (the worker removes it), an unreadable file or a busy
database goes to the cache actor and its worker as before. The connection never
waits for a lock (`timeout=0`): WAL readers do not block on writers, and anything
else falls back to the worker, so the event loop is never held up.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from actors.cache.messages import CacheHit
from actors.cache.store import HIT_COLUMNS, hit_of


@attrs.frozen
class Looked:
    """What the probe could tell: certainly `absent`, a live `hit`, or neither (ask the actor)."""

    absent: bool = False
    hit: CacheHit | None = None


UNSURE = Looked()


class KeyProbe:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: str) -> KeyProbe | None:
        """A probe of the cache file at `path`, or None if it cannot be read (the worker answers every lookup)."""
        try:
            db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=0,
                                 check_same_thread=False, isolation_level=None)
            db.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
        except sqlite3.Error:
            return None
        return cls(db)

    def look(self, key: str, now: float) -> Looked:
        """The entry under `key` if it is live at `now` (the store's clock), or that there is none."""
        try:
            row = self._db.execute(f"SELECT {HIT_COLUMNS}, expires FROM entries WHERE key=?", (key,)).fetchone()
        except sqlite3.Error:
            return UNSURE
        if row is None:
            return Looked(absent=True)
        if row[7] is not None and row[7] <= now:
            return UNSURE
        return Looked(hit=hit_of(row))

    def close(self) -> None:
        self._db.close()

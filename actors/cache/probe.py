"""Telling a cache miss on the event loop, without a thread hop or a message.

Most lookups of a GA run or a benchmark miss (every new sample is a new key), and
handing each to the store's worker thread put a thread hop and its wake-up on the
request's path. A key lookup in SQLite's primary-key index takes microseconds, so the
cache client first asks a read-only connection of its own whether the key is there
at all. Only a definite "not stored" is answered that way; a stored key (whose hit
must be counted and its priority raised), an unreadable file or a busy database goes
to the cache actor and its worker as before. The connection never waits for a lock
(`timeout=0`): WAL readers do not block on writers, and anything else falls back to
the worker, so the event loop is never held up.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


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

    def absent(self, key: str) -> bool:
        """True only if no entry has `key` (expired entries count as present: the worker removes them)."""
        try:
            return self._db.execute("SELECT 1 FROM entries WHERE key=?", (key,)).fetchone() is None
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self._db.close()

"""The persistent response store: SQLite in WAL mode, cost-weighted eviction.

SQLite because it is in the standard library, survives crashes, and lets several
processes on one machine share one file (WAL: readers never block the writer).
Eviction is GreedyDual-Size-Frequency: priority = L + hits * cost / size, where L
rises to the priority of the last entry evicted; an answer that cost $0.20 outlives
one that cost $0.0001 at the same recency, and a long-unused entry eventually goes.

A store that meets a corrupt, locked or unreadable file degrades to misses, logs one
warning naming the file and the fix (`orchestrator cache verify` / `clear`), and never
fails a request. The store is synchronous; the cache actor runs it on one worker
thread at a time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from actors.cache import similarity
from actors.cache.messages import CacheHit, CachePut, CacheStats, CacheTouched
from actors.cache.settings import CacheSettings

log = logging.getLogger(__name__)

HIT_COLUMNS = "text, input_tokens, output_tokens, cost_nd, model, provider, tier"
"""The columns of an entry a hit is made of, in CacheHit's order (`hit_of`); queries select more after them."""


def hit_of(row: Sequence[Any], similarity_score: float | None = None) -> CacheHit:
    """The hit made of a row that starts with HIT_COLUMNS."""
    return CacheHit(row[0], row[1], row[2], row[3], row[4], row[5], row[6], similarity_score)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, text TEXT NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cost_nd INTEGER NOT NULL, size INTEGER NOT NULL,
    created REAL NOT NULL, expires REAL, hits INTEGER NOT NULL DEFAULT 0,
    priority REAL NOT NULL, signature BLOB
);
CREATE INDEX IF NOT EXISTS entries_priority ON entries(priority);
CREATE TABLE IF NOT EXISTS bands (
    scope TEXT NOT NULL, band INTEGER NOT NULL, bucket BLOB NOT NULL, key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bands_lookup ON bands(scope, band, bucket);
CREATE INDEX IF NOT EXISTS bands_key ON bands(key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""

_FILE_MODE = 0o600
_SIZE = "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
"""Entries and their bytes: what a store starts counting from, and what `cache stats` reads."""
WAL_CHECKPOINT_PAGES = 4000
"""Pages the WAL may hold before SQLite copies them into the database (its default is 1,000).

Answers land at random places in the key index, so each put dirties pages of its own;
between checkpoints a page written again is copied once. At 4,000 (16 MiB of WAL) a
put costs about an eighth less CPU than at 1,000, and a lookup no more
(docs/BENCHMARKS.md, ninth session)."""


@attrs.define
class Counters:
    hits: int = 0
    similar_hits: int = 0
    misses: int = 0
    saved_nd: int = 0
    evictions: int = 0


class CacheStore:
    def __init__(self, settings: CacheSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self.counters = Counters()
        self.degraded = False
        self._db: sqlite3.Connection | None = None
        self._inflation = 0.0
        self._entries = 0
        self._bytes = 0
        try:
            self._open()
        except sqlite3.Error as exc:
            self._degrade(exc)

    # -- lifecycle -----------------------------------------------------------------------

    def _open(self) -> None:
        path = self.settings.path or ":memory:"
        if self.settings.path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not Path(path).exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, _FILE_MODE))
        db = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE name='inflation'").fetchone()
        self._inflation = row[0] if row else 0.0
        count, size = db.execute(_SIZE).fetchone()
        self._entries, self._bytes = count, size
        self._db = db
        if self.settings.path is not None:
            for suffix in ("", "-wal", "-shm"):
                candidate = Path(path + suffix)
                if candidate.exists():
                    os.chmod(candidate, _FILE_MODE)

    def _degrade(self, exc: BaseException) -> None:
        if not self.degraded and _disk_full(exc):
            log.warning("response cache %s: the disk holding it is full (%s); serving without a cache until the "
                        "orchestrator restarts. Nothing to repair: free space.", self.settings.path, exc)
        elif not self.degraded:
            log.warning(
                "response cache %s is unusable (%s: %s); serving without a cache. "
                "Run `orchestrator cache verify` or `orchestrator cache clear` to repair it.",
                self.settings.path or ":memory:", type(exc).__name__, exc,
            )
        self.degraded = True
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def close(self) -> None:
        """Fold the WAL into the database first: a stopped orchestrator leaves one file that read-only commands
        can read without SQLite creating or checkpointing anything (`read_only`)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    # -- lookups ---------------------------------------------------------------------------

    def get(self, key: str) -> CacheHit | None:
        db = self._db
        if db is None:
            self.counters.misses += 1
            return None
        now = self._clock()
        try:
            row = db.execute(
                f"SELECT {HIT_COLUMNS}, expires, hits, size FROM entries WHERE key=?",
                (key,),
            ).fetchone()
            if row is None or (row[7] is not None and row[7] <= now):
                if row is not None:
                    self._delete(db, key)
                self.counters.misses += 1
                return None
            self._touch(db, key, row[8] + 1, row[3], row[9])
        except sqlite3.Error as exc:
            self._degrade(exc)
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        self.counters.saved_nd += row[3]
        return hit_of(row)

    def similar(self, kind: str, tier: str, text: str) -> CacheHit | None:
        """The most similar entry of the same kind and tier at or above the threshold.

        Candidates come from the LSH bands; their signatures are fetched in one query
        and compared in one vectorised step.
        """
        db = self._db
        if db is None:
            return None
        sig = similarity.signature(text)
        scope = f"{kind}\x00{tier}"
        now = self._clock()
        try:
            candidates: set[str] = set()
            for band, bucket in enumerate(similarity.bands(sig)):
                candidates.update(
                    k for (k,) in db.execute(
                        "SELECT key FROM bands WHERE scope=? AND band=? AND bucket=? LIMIT 64", (scope, band, bucket)
                    )
                )
            if not candidates:
                return None
            keys = list(candidates)
            rows = db.execute(
                f"SELECT key, signature FROM entries WHERE key IN ({','.join('?' * len(keys))}) "
                "AND signature IS NOT NULL AND (expires IS NULL OR expires > ?)",
                (*keys, now),
            ).fetchall()
            if not rows:
                return None
            index, score = similarity.best_match(sig, [r[1] for r in rows])
            if score < self.settings.similarity_threshold:
                return None
            row = db.execute(
                f"SELECT {HIT_COLUMNS}, hits, size FROM entries WHERE key=?",
                (rows[index][0],),
            ).fetchone()
            if row is None:
                return None
            self._touch(db, rows[index][0], row[7] + 1, row[3], row[8])
        except sqlite3.Error as exc:
            self._degrade(exc)
            return None
        self.counters.similar_hits += 1
        self.counters.saved_nd += row[3]
        return hit_of(row, round(score, 4))

    # -- writes ----------------------------------------------------------------------------

    def put(self, item: CachePut) -> None:
        self.put_many([item])

    def put_many(self, items: list[CachePut]) -> None:
        """Store answers in one transaction (the actor batches what arrived together)."""
        db = self._db
        if db is None or not items:
            return
        now = self._clock()
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in items:
                self._insert(db, item, now)
            db.execute("COMMIT")
            self._evict(db)
        except sqlite3.Error as exc:
            self._degrade(exc)

    def touch_many(self, touches: list[CacheTouched]) -> None:
        """Count the hits clients answered from the file themselves, and raise those entries' priority."""
        db = self._db
        if db is None or not touches:
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            for touch in touches:
                row = db.execute("SELECT hits, cost_nd, size FROM entries WHERE key=?", (touch.key,)).fetchone()
                if row is not None:
                    self._touch(db, touch.key, row[0] + 1, row[1], row[2])
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._degrade(exc)
        self.counters.hits += len(touches)
        self.counters.saved_nd += sum(touch.cost_nd for touch in touches)

    def _insert(self, db: sqlite3.Connection, item: CachePut, now: float) -> None:
        ttl = item.ttl_s if item.ttl_s is not None else self.settings.default_ttl_s
        size = len(item.text.encode("utf-8")) + 200
        sig = similarity.signature(item.similar_text) if item.similar_text else None
        if db.execute("SELECT 1 FROM entries WHERE key=?", (item.key,)).fetchone() is not None:
            self._delete(db, item.key)
        db.execute(
            "INSERT INTO entries (key, kind, tier, model, provider, text, input_tokens, output_tokens, "
            "cost_nd, size, created, expires, hits, priority, signature) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                item.key, item.kind, item.tier, item.model, item.provider, item.text, item.input_tokens,
                item.output_tokens, item.cost_nd, size, now, None if ttl is None else now + ttl, 1,
                self._priority(1, item.cost_nd, size), None if sig is None else similarity.to_bytes(sig),
            ),
        )
        if sig is not None:
            scope = f"{item.kind}\x00{item.tier}"
            db.executemany(
                "INSERT INTO bands (scope, band, bucket, key) VALUES (?,?,?,?)",
                [(scope, band, bucket, item.key) for band, bucket in enumerate(similarity.bands(sig))],
            )
        self._entries += 1
        self._bytes += size

    def _priority(self, hits: int, cost_nd: int, size: int) -> float:
        return self._inflation + hits * max(cost_nd, 1) / size

    def _touch(self, db: sqlite3.Connection, key: str, hits: int, cost_nd: int, size: int) -> None:
        db.execute("UPDATE entries SET hits=?, priority=? WHERE key=?", (hits, self._priority(hits, cost_nd, size), key))

    def _delete(self, db: sqlite3.Connection, key: str) -> None:
        row = db.execute("SELECT size FROM entries WHERE key=?", (key,)).fetchone()
        db.execute("DELETE FROM entries WHERE key=?", (key,))
        db.execute("DELETE FROM bands WHERE key=?", (key,))
        if row is not None:
            self._entries -= 1
            self._bytes -= row[0]

    def _evict(self, db: sqlite3.Connection) -> None:
        if self._entries <= self.settings.max_entries and self._bytes <= self.settings.max_bytes:
            return
        target_entries = int(self.settings.max_entries * 0.99)
        target_bytes = int(self.settings.max_bytes * 0.99)
        db.execute("BEGIN IMMEDIATE")
        while self._entries > target_entries or self._bytes > target_bytes:
            victims = db.execute(
                "SELECT key, priority FROM entries ORDER BY priority ASC LIMIT ?",
                (max(1, min(256, self._entries - target_entries)),),
            ).fetchall()
            if not victims:
                break
            for key, priority in victims:
                self._inflation = max(self._inflation, priority)
                self._delete(db, key)
                self.counters.evictions += 1
                if self._entries <= target_entries and self._bytes <= target_bytes:
                    break
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('inflation', ?)", (self._inflation,))
        db.execute("COMMIT")

    def stats(self) -> CacheStats:
        c = self.counters
        return CacheStats(c.hits, c.similar_hits, c.misses, self._entries, self._bytes, c.saved_nd, c.evictions, self.degraded)


def _disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, or the OS's ENOSPC: a cache that cannot grow, not a damaged one."""
    return (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC))


def read_only(path: str) -> sqlite3.Connection:
    """A connection to the cache file that writes nothing, for commands that only look.

    Opening a WAL database even with `mode=ro` creates its -wal and -shm files, and a
    read-write connection's close checkpoints the WAL into the database and deletes it.
    With no WAL content (the file a stopped orchestrator leaves) the file is opened
    immutable: SQLite reads it alone and creates nothing. With WAL content (an
    orchestrator running, or one that was killed) it is opened read-only: the database
    and the WAL are left as they are, and SQLite marks the read in its -shm index, as
    every reader of a WAL database must.
    """
    wal = Path(path + "-wal")
    flags = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?{flags}", uri=True, timeout=5.0)


def read_stats(path: str) -> tuple[int, int, bool]:
    """(entries, bytes, degraded) of the cache file, read without writing: a missing file is an empty cache, one
    SQLite cannot read a degraded one."""
    if not Path(path).exists():
        return 0, 0, False
    try:
        db = read_only(path)
        try:
            count, size = db.execute(_SIZE).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0, 0, True
    return count, size, False


def verify(path: str) -> tuple[bool, str, bool]:
    """Check a cache file, writing nothing (`read_only`): (healthy, what SQLite says, damaged).

    A file that cannot be opened for lack of permission is not damaged: clearing it
    would delete a healthy cache, so `damaged` is False and the detail says why.
    """
    if not Path(path).exists():
        return True, "no cache file (it is created on first use)", False
    if not os.access(path, os.R_OK) or not os.access(Path(path).parent, os.W_OK | os.X_OK):
        return False, "cannot open it: the file or its directory is not accessible to this user (not damage)", False
    try:
        db = read_only(path)
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()[0]
            count = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        return False, f"cannot open it: {exc} (not necessarily damage)", False
    except sqlite3.Error as exc:
        return False, f"{type(exc).__name__}: {exc}", True
    return result == "ok", f"integrity {result}, {count} entries", result != "ok"


def clear(path: str) -> int:
    """Delete the cache files; returns how many were removed."""
    removed = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(path + suffix)
        if candidate.exists():
            candidate.unlink()
            removed += 1
    return removed

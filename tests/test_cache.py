"""The response cache: keys, policies, TTL, similarity, cost-weighted eviction, robustness."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.cache.actor import CacheActor
from actors.cache.client import CacheClient
from actors.cache.key import CacheKeys
from actors.cache.messages import CachePut, CacheStatsQuery
from actors.cache.probe import KeyProbe
from actors.cache.settings import CacheSettings
from actors.cache.store import CacheStore, clear, read_stats, verify
from actors.catalog import CODEC
from actors.messages import ChatMessage
from actors.runtime.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = (ChatMessage("user", "write transform(grid) for task 42"),)
PROGRAM = "def transform(grid):\n    return grid\n" * 3


def cache_key(model: str, messages: tuple[ChatMessage, ...], **params: object) -> str:
    """A key as a router's first sight of the prompt makes it."""
    return CacheKeys().key(model, messages, **params)  # type: ignore[arg-type]


def key(sample: int = 0, **changes: object) -> str:
    params: dict[str, object] = {"temperature": 0.7, "top_p": None, "max_tokens": 512, "stop": (), "sample_index": sample}
    params.update(changes)
    return cache_key("qwen", MESSAGES, **params)  # type: ignore[arg-type]


def put(store: CacheStore, k: str, cost: int = 1000, text: str = PROGRAM, similar: str | None = None, ttl: float | None = None) -> None:
    store.put(CachePut(k, "arc", "tier_1", "qwen", "Qwen", text, 100, 20, cost, ttl, similar))


def test_the_key_separates_samples_and_sampling_parameters_but_not_trailing_spaces() -> None:
    assert key(0) != key(1)
    assert key(temperature=0.2) != key()
    assert key(max_tokens=100) != key()
    assert cache_key("qwen", (ChatMessage("user", "write transform(grid) for task 42   "),), temperature=0.7,
                     top_p=None, max_tokens=512, stop=(), sample_index=0) == key()


@pytest.mark.parametrize(
    ("temperature", "top_p", "max_tokens", "stop", "sample", "pinned"),
    [
        (0.7, None, 512, ("\n\n",), 3, "80f6e68b53da6b6416b2978b8e84d91e8df34ba7"),
        (None, 0.9, 512, (), -1, "a93deedeb13c6382822de59e24451b96bc9ba5e3"),
        (0.0, None, 64, (), 12345678901, "a7caba8e1edfa947d45fb33131c7bb11a61677a6"),
    ],
)
def test_keys_are_pinned_across_versions(
    temperature: float | None, top_p: float | None, max_tokens: int, stop: tuple[str, ...], sample: int, pinned: str
) -> None:
    """A cache file and a recorded log outlive the code: the same request must find them again."""
    messages = (ChatMessage("system", "You write Python."), ChatMessage("user", "write transform(grid)  \r\nfor task 42"))
    for _ in range(2):
        assert cache_key("qwen", messages, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                         stop=stop, sample_index=sample) == pinned


@given(
    prompts=st.lists(st.text(max_size=40), min_size=1, max_size=3),
    calls=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([None, 0.0, 0.7]), st.integers(-1, 5)), max_size=12),
)
def test_a_routers_keys_are_the_keys_whatever_it_remembers(prompts: list[str], calls: list[tuple[int, float | None, int]]) -> None:
    """A router hashes a prompt once for all its samples (`CacheKeys`); the keys must be those of its first sight,
    in any order of prompts, parameters and samples, including a memo so small it forgets."""
    keys = CacheKeys(size=2)
    for index, temperature, sample in calls:
        messages = (ChatMessage("user", prompts[index % len(prompts)]),)
        params = {"temperature": temperature, "top_p": None, "max_tokens": 64, "stop": (), "sample_index": sample}
        assert keys.key("qwen", messages, **params) == cache_key("qwen", messages, **params)  # type: ignore[arg-type]


def test_no_module_keeps_a_memo_of_its_own() -> None:
    """Memos belong to the object that fills them (a router, an estimator, the ledger's core): a module-level
    cache would be state shared by every engine in the process, and kept after they close."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("actors", "orchestrator")
        for path in (ROOT / package).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.startswith(("@functools.lru_cache", "@functools.cache", "@lru_cache", "@cache"))
    ]
    assert offenders == []


def test_an_exact_hit_survives_a_restart(tmp_path: Path) -> None:
    settings = CacheSettings(path=str(tmp_path / "c.sqlite3"))
    store = CacheStore(settings)
    put(store, key(), cost=123)
    store.close()
    again = CacheStore(settings)
    hit = again.get(key())
    assert hit is not None and hit.text == PROGRAM and hit.cost_nd == 123 and hit.similarity is None
    assert again.get(key(1)) is None
    assert again.stats().hits == 1 and again.stats().misses == 1 and again.stats().saved_nd == 123


def test_ttl_expires_entries() -> None:
    now = [1000.0]
    store = CacheStore(CacheSettings(), clock=lambda: now[0])
    put(store, key(), ttl=60)
    assert store.get(key()) is not None
    now[0] += 61
    assert store.get(key()) is None


def test_similar_prompts_hit_above_the_threshold_only_within_kind_and_tier() -> None:
    store = CacheStore(CacheSettings(similarity_threshold=0.85))
    base = "Write transform(grid) that mirrors every row of the grid left to right and keeps colours. " * 3
    put(store, "k1", similar=base)
    close = store.similar("arc", "tier_1", base.replace("keeps colours", "keeps the colours"))
    assert close is not None and close.similarity is not None and close.similarity >= 0.85
    assert store.similar("arc", "tier_1", "Sort the list of integers in descending order and remove duplicates.") is None
    assert store.similar("text", "tier_1", base) is None
    assert store.similar("arc", "tier_2", base) is None


def test_cost_weighted_eviction_keeps_the_expensive_answer() -> None:
    store = CacheStore(CacheSettings(max_entries=50))
    put(store, "expensive", cost=200_000_000)
    for i in range(120):
        put(store, f"cheap-{i}", cost=100_000)
    assert store.get("expensive") is not None
    assert store.stats().entries <= 50 and store.stats().evictions >= 70


def test_eviction_holds_the_byte_budget_too_and_keeps_the_answer_hit_most() -> None:
    """Few large answers pass `max_bytes` long before `max_entries`; of two alike, the one asked for again stays."""
    size = len(PROGRAM.encode()) + 200
    store = CacheStore(CacheSettings(max_bytes=30 * size))
    put(store, "asked-again")
    put(store, "asked-once")
    for _ in range(3):
        assert store.get("asked-again") is not None
    for i in range(60):
        put(store, f"filler-{i}")
    stats = store.stats()
    assert stats.bytes <= 30 * size and stats.entries <= 30 and stats.evictions >= 30
    assert store.get("asked-again") is not None and store.get("asked-once") is None


def test_an_entry_expires_at_its_ttl_to_the_second() -> None:
    now = [1000.0]
    store = CacheStore(CacheSettings(), clock=lambda: now[0])
    put(store, key(), ttl=60)
    now[0] += 59.999
    assert store.get(key()) is not None
    now[0] = 1060.0
    assert store.get(key()) is None


def test_two_processes_share_one_cache_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    script = (
        "from actors.cache.store import CacheStore; from actors.cache.settings import CacheSettings;"
        "from actors.cache.messages import CachePut;"
        f"s = CacheStore(CacheSettings(path={str(path)!r}));"
        "s.put(CachePut('from-child', 'arc', 't', 'm', 'p', 'child text', 1, 1, 5, None, None)); s.close()"
    )
    reader = CacheStore(CacheSettings(path=str(path)))
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    hit = reader.get("from-child")
    reader.close()
    assert hit is not None and hit.text == "child text"


def test_a_corrupt_file_degrades_to_misses_with_one_warning_and_clear_fixes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING):
        store = CacheStore(CacheSettings(path=str(path)))
        assert store.get(key()) is None
        put(store, key())
        assert store.get(key()) is None
    assert caplog.text.count("unusable") == 1 and "orchestrator cache clear" in caplog.text
    assert store.stats().degraded
    assert verify(str(path))[0] is False
    assert clear(str(path)) == 1
    fresh = CacheStore(CacheSettings(path=str(path)))
    put(fresh, key())
    assert fresh.get(key()) is not None and verify(str(path))[0] is True
    fresh.close()


def _files(directory: Path, skip: str = "-shm") -> dict[str, tuple[int, int, bytes]]:
    return {f.name: (f.stat().st_size, f.stat().st_mtime_ns, f.read_bytes())
            for f in sorted(directory.iterdir()) if not f.name.endswith(skip)}


def test_looking_at_a_cache_writes_nothing(tmp_path: Path) -> None:
    """`cache stats` and `cache verify` checkpointed the WAL into the database and deleted it (and `stats` on a new
    state directory created the cache's): read-only commands must leave the state as they found it."""
    path = tmp_path / "cache" / "c.sqlite3"
    assert read_stats(str(path)) == (0, 0, False) and not path.parent.exists()
    store = CacheStore(CacheSettings(path=str(path)))
    for sample in range(3):
        put(store, key(sample))
    live = _files(path.parent)
    assert live["c.sqlite3-wal"][0] > 0, "a running (or killed) orchestrator's entries are in the WAL"
    assert read_stats(str(path))[:2] == (3, store.stats().bytes) and verify(str(path))[1] == "integrity ok, 3 entries"
    assert _files(path.parent) == live, "the database and its WAL untouched (SQLite's -shm index records the read)"
    probe = KeyProbe.open(str(path))  # as in a run: the client's read-only probe closes after the store
    assert probe is not None
    store.close()
    probe.close()
    stopped = _files(path.parent, skip="never")
    assert stopped.get("c.sqlite3-wal", (0,))[0] == 0, "a stopped orchestrator's WAL is folded into the database"
    assert read_stats(str(path))[0] == 3 and verify(str(path))[0]
    assert _files(path.parent, skip="never") == stopped, "not a byte, not a timestamp"


def test_a_full_disk_is_named_as_such_not_as_damage_to_repair(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite's "database or disk is full" was reported as an unusable cache to verify or clear (a healthy one)."""
    store = CacheStore(CacheSettings(path=str(tmp_path / "c.sqlite3")))
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING):
        store._degrade(full)
    assert store.degraded and "the disk holding it is full" in caplog.text and "cache clear" not in caplog.text


def test_cache_files_are_owner_only(tmp_path: Path) -> None:
    store = CacheStore(CacheSettings(path=str(tmp_path / "cache" / "c.sqlite3")))
    put(store, key())
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    for file in (tmp_path / "cache").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    store.close()


@pytest.mark.anyio
async def test_the_actor_serves_lookups_and_stores_on_both_backends(anyio_backend: str, tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite3")
    supervisor = Supervisor(CODEC)
    client = CacheClient(supervisor.add("cache", lambda: CacheActor(CacheSettings(path=path))), path=path)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        assert await client.lookup(key(), kind="arc", tier="tier_1", similar_text=None) is None
        await client.store(key(), kind="arc", tier="tier_1", model="qwen", provider="Qwen", text=PROGRAM,
                           input_tokens=10, output_tokens=5, cost_nd=77, ttl_s=None, similar_text=None)
        hit = await client.lookup(key(), kind="arc", tier="tier_1", similar_text=None)
        stats = await client.stats()
        supervisor.stop()
    client.close()
    assert hit is not None and hit.cost_nd == 77, "a key just stored is found before the actor has written it"
    assert stats.hits == 1 and stats.misses == 1 and stats.entries == 1


def test_minhash_signatures_are_pinned_across_versions() -> None:
    """Signatures live in the cache on disk: the permutation constants must never drift."""
    from actors.cache.similarity import signature

    assert signature("def transform(grid): return grid")[:8].tolist() == [
        8289613820471460, 12769240599229867, 35815284993075465, 45519923477335563,
        3120503396803680, 29021806880597783, 19499320368469589, 20620396884237957,
    ]


@pytest.mark.anyio
async def test_misses_skip_the_worker_yet_see_what_another_process_stored(anyio_backend: str, tmp_path: Path) -> None:
    """A miss is answered by the client without a message, but never for a key another process has stored meanwhile."""
    path = str(tmp_path / "c.sqlite3")
    actor = CacheActor(CacheSettings(path=path))
    supervisor = Supervisor(CODEC)
    ref = supervisor.add("cache", lambda: actor)
    client = CacheClient(ref, path=path)
    other = CacheStore(CacheSettings(path=path))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        misses = [await client.lookup(key(s), kind="arc", tier="tier_1", similar_text=None) for s in range(5)]
        seen_by_actor = await ref.ask(CacheStatsQuery())
        put(other, key(3), cost=55)
        hit = await client.lookup(key(3), kind="arc", tier="tier_1", similar_text=None)
        await client.store(key(9), kind="arc", tier="tier_1", model="qwen", provider="Qwen", text=PROGRAM,
                           input_tokens=10, output_tokens=5, cost_nd=77, ttl_s=None, similar_text=None)
        stats = await client.stats()
        supervisor.stop()
    client.close()
    assert misses == [None] * 5 and seen_by_actor.misses == 0, "the misses never reached the actor"
    assert hit is not None and hit.cost_nd == 55
    assert stats.misses == 5 and stats.hits == 1
    assert other.get(key(9)) is not None, "an answer still lingering at stop is written before the actor ends"
    other.close()


@given(st.text(alphabet=" \t\r\nab", max_size=40))
def test_a_key_ignores_trailing_blanks_and_line_endings_exactly_as_the_rule_says(text: str) -> None:
    """`normalise` skips its expression when no line can end in a blank; the result is still the rule's."""
    import re

    from actors.cache.key import normalise

    rule = re.sub(r"[ \t]+(?=\n|$)", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    assert normalise(text) == rule


class RecordingCacheActor(CacheActor):
    """Notes the kind of every message it is sent."""

    def __init__(self, settings: CacheSettings, seen: list[str]) -> None:
        super().__init__(settings)
        self.seen = seen

    async def handle(self, msg: object, corr: int) -> object | None:
        self.seen.append(type(msg).__name__)
        return await super().handle(msg, corr)


@pytest.mark.anyio
async def test_a_stored_hit_is_answered_from_the_file_and_told_to_the_actor_which_counts_it(
        anyio_backend: str, tmp_path: Path) -> None:
    """No lookup reaches the actor for a live entry; the actor still counts the hit, its saving and its priority.
    An expired entry is the actor's to answer (and remove)."""
    import sqlite3

    path = str(tmp_path / "c.sqlite3")
    other = CacheStore(CacheSettings(path=path))
    put(other, key(1), cost=55)
    long_ago = CacheStore(CacheSettings(path=path), clock=lambda: 1_000.0)
    put(long_ago, key(2), cost=66, ttl=60.0)  # expired since 1970
    long_ago.close()
    with sqlite3.connect(path) as db:
        (hits_before,) = db.execute("SELECT hits FROM entries WHERE key=?", (key(1),)).fetchone()
    seen: list[str] = []
    supervisor = Supervisor(CODEC)
    client = CacheClient(supervisor.add("cache", lambda: RecordingCacheActor(CacheSettings(path=path), seen)), path=path)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        hits = [await client.lookup(key(1), kind="arc", tier="tier_1", similar_text=None) for _ in range(3)]
        pending = await client.stats()
        expired = await client.lookup(key(2), kind="arc", tier="tier_1", similar_text=None)
        supervisor.stop()
    late = await client.lookup(key(1), kind="arc", tier="tier_1", similar_text=None)
    client.close()
    assert late is not None and late.cost_nd == 55, "a hit after the actor stopped is still a hit (its count is lost)"
    assert all(h is not None and h.cost_nd == 55 and h.text == PROGRAM for h in hits)
    assert "CacheLookup" not in seen[: seen.index("CacheStatsQuery")] and seen.count("CacheTouched") == 3
    assert pending.hits == 3 and pending.saved_nd == 3 * 55, "hits told but not yet written are counted"
    assert expired is None and seen[-1] == "CacheLookup", "an expired entry goes to the actor"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT hits FROM entries WHERE key=?", (key(1),)).fetchone() == (hits_before + 3,)
        assert db.execute("SELECT 1 FROM entries WHERE key=?", (key(2),)).fetchone() is None, "removed by the actor"
    other.close()

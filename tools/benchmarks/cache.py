"""Cache lookups at 100,000 entries: exact and similarity, p50/p99 (store level, one thread)."""

from __future__ import annotations

import random
import tempfile
import time

from actors.cache.messages import CachePut
from actors.cache.settings import CacheSettings
from actors.cache.store import CacheStore
from orchestrator.tables import render_table

WORDS = ("grid", "row", "column", "mirror", "rotate", "colour", "object", "count", "fill", "border",
         "copy", "shift", "scale", "tile", "pattern", "symmetry", "largest", "smallest", "line", "corner")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(40))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def run(entries: int = 100_000, probes: int = 2000) -> dict[str, object]:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as directory:
        store = CacheStore(CacheSettings(path=f"{directory}/c.sqlite3", max_entries=entries * 2))
        texts = []
        start = time.perf_counter()
        batch = []
        for i in range(entries):
            text = _text(rng)
            texts.append(text)
            similar = text if i % 10 == 0 else None
            batch.append(CachePut(f"k{i}", "arc", "tier_1", "m", "p", "def transform(g): return g", 100, 20, 1000 + i, None, similar))
            if len(batch) == 1000:
                store.put_many(batch)
                batch = []
        fill = time.perf_counter() - start
        exact, similar, hits = [], [], 0
        for _ in range(probes):
            key = f"k{rng.randrange(entries)}"
            t = time.perf_counter()
            store.get(key)
            exact.append(time.perf_counter() - t)
        for _ in range(probes // 4):
            base = texts[rng.randrange(0, entries, 10)].split()
            base[rng.randrange(len(base))] = "changed"
            t = time.perf_counter()
            hits += store.similar("arc", "tier_1", " ".join(base)) is not None
            similar.append(time.perf_counter() - t)
        store.close()
    return {"fill_s": fill, "exact_ms": _percentiles(exact), "similar_ms": _percentiles(similar),
            "similar_hit_rate": hits / (probes // 4), "entries": entries}


def main() -> None:
    r = run()
    print(render_table(
        ("cache at %d entries" % r["entries"], "p50 ms", "p99 ms"),  # type: ignore[str-format]
        [("exact lookup", f"{r['exact_ms'][0]:.3f}", f"{r['exact_ms'][1]:.3f}"),  # type: ignore[index]
         ("similarity lookup (one word changed)", f"{r['similar_ms'][0]:.3f}", f"{r['similar_ms'][1]:.3f}")],  # type: ignore[index]
        title=f"cache lookups (filled in {r['fill_s']:.1f} s; similar hit rate {r['similar_hit_rate']:.0%})",
    ))
    print()


if __name__ == "__main__":
    main()

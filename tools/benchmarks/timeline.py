"""Where a request's added latency goes when providers take 50 ms: a timeline by phase.

    python tools/bench.py timeline --requests 1000 --concurrency 16 --rounds 3

Requests at concurrency 16 against a 50 ms provider travel in waves: the answers of
one wave arrive together, and each caller sends its next request at once, so every
request of a wave waits for the CPU the others spend before it. What a request
waits for is then not its own CPU but its place in the loop's queue at each hand-off
(an ask to the ledger, the provider's work queue, the reply). This measures, per
request, the time in each phase of the full path and of the path without journal,
cache and telemetry, beside the bare client's latency, all pinned as in `e2e`:

- reserve: the ask to the ledger, its journal write included;
- provider hand-off: waiting for the provider's reply minus the HTTP exchange itself
  (the call's trip through the provider's work queue and the reply's way back);
- HTTP: the exchange in the provider's worker, from send to the parsed response;
- the rest: routing, cache probe, settling and the result, in the caller's task.

Run as a script it is one measured client (the phases are timed by wrapping the
methods that bound them): `timeline.py warm URL REQUESTS CONCURRENCY STATE [PARTS]`.
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

PHASES = {  # phase: (class path, coroutine method)
    "generate": ("actors.router.router.Router", "generate"),
    "reserve": ("actors.router.attempt.AttemptRunner", "_reserve"),
    "reply": ("actors.router.attempt.AttemptRunner", "_wait"),
    "http": ("actors.providers.transport.AiohttpTransport", "send"),
}


def _timed(method: Callable[..., Any], label: str, totals: collections.Counter[str], counts: collections.Counter[str]) -> Any:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - started
            counts[label] += 1

    return timed


def client() -> None:
    """One pinned client: e2e_client's run with the phases timed; adds their mean ms to its JSON line."""
    import importlib

    import anyio
    import orjson

    from tools.benchmarks import e2e_client

    totals: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for label, (path, name) in PHASES.items():
        module_name, cls_name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(module_name), cls_name)
        setattr(cls, name, _timed(getattr(cls, name), label, totals, counts))
    mode, url, count, concurrency, state = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    parts = sys.argv[6] if len(sys.argv) > 6 else ""
    figures = anyio.run(e2e_client.orchestrated, url, count, concurrency, state, mode, parts)
    figures.update({f"{label}_ms": totals[label] / counts[label] * 1e3 for label in PHASES if counts[label]})
    print(orjson.dumps(figures).decode())


def run(requests: int, concurrency: int, rounds: int) -> None:
    from orchestrator.tables import render_table
    from tools.benchmarks.e2e import Simulator, measure, pinning_note

    variants = ("full", "none of the three")  # overhead.VARIANTS by name
    results: dict[str, list[dict[str, float]]] = {"bare": [], **{name: [] for name in variants}}
    script = Path(__file__).name
    with Simulator(0.05) as sim:
        for _ in range(rounds):
            results["bare"].append(measure(sim, "bare", requests, concurrency))
            for name in variants:
                results[name].append(measure(sim, "warm", requests, concurrency, parts=name, script=script))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    bare_rps, bare_p50 = median("bare", "rps"), median("bare", "p50_ms")
    rows = [("bare", f"{bare_rps:.0f}", "1.000", "+0.00", "", "", f"{bare_p50:.2f}", "")]
    for name in variants:
        generate, reserve, reply, http = (median(name, f"{p}_ms") for p in PHASES)
        rows.append((
            name, f"{median(name, 'rps'):.0f}", f"{median(name, 'rps') / bare_rps:.3f}",
            f"{median(name, 'p50_ms') - bare_p50:+.2f}", f"{reserve:.2f}", f"{reply - http:.2f}", f"{http:.2f}",
            f"{generate - reserve - reply:.2f}",
        ))
    print(render_table(
        ("client", "req/s", "throughput ratio", "added p50 ms", "reserve ms", "provider hand-off ms", "HTTP ms",
         "rest ms"),
        rows,
        title=f"latency timeline: 50 ms per answer, concurrency {concurrency}, {requests} requests, {rounds} "
              f"interleaved rounds, mean ms per request by phase (bare: its p50); {pinning_note()}",
    ))
    print()


if __name__ == "__main__":
    client()

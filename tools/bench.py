"""Benchmarks, measured side by side in one run because these machines are noisy.

    python tools/bench.py                 # every section
    python tools/bench.py e2e --requests 3000 --concurrency 100
    python tools/bench.py e2e-text e2e-arc --requests 2000 --concurrency 100   # client CPU only, text and ARC
    python tools/bench.py e2e-plain --requests 2000 --concurrency 100   # plain text, routed by the learned default
    python tools/bench.py text-revisions --revisions b4a330e --requests 2000   # text prompts, a revision against this tree
    python tools/bench.py plain-revisions --revisions b40312b --requests 2000   # plain text routed, the same
    python tools/bench.py journal-sync --requests 2000 --rounds 5   # one journal commit: appended against preallocated
    python tools/bench.py all-down   # every provider refusing connections: a wave, then every circuit open
    python tools/bench.py serve --requests 2000 --concurrency 50   # the server's CPU per request against the embedded path
    python tools/bench.py serve --litellm VENV/bin/litellm   # the same, LiteLLM's proxy beside it
    python tools/bench.py ablation --requests 2000   # where the time goes
    python tools/bench.py cachepath --requests 2000  # cache hits against misses
    python tools/bench.py revisions --revisions 0b6ce5c,HEAD --requests 2000   # before and after
    python tools/bench.py revisions --revisions eb2604a,HEAD --requests 1000 --concurrency 16 --latency 0.05
    python tools/bench.py latency-parts --requests 1000 --concurrency 16   # 50 ms answers, part by part
    python tools/bench.py timeline --requests 1000 --concurrency 16   # 50 ms answers, where the added latency waits
    taskset -c 1 python tools/bench.py overhead   # the orchestrator's own CPU, no HTTP, part by part
    taskset -c 1 python tools/bench.py overhead --revisions 57c8d99,HEAD --rounds 5   # the same, before and after
    taskset -c 1 python tools/bench.py ask --revisions 71fe820,HEAD   # one ask to an idle actor, before and after
    taskset -c 1 python tools/bench.py batch --revisions 8522d83,HEAD   # a GA population through generate_batch
    python tools/bench.py routing ledger cache telemetry

`e2e` is the fair harness (tools/benchmarks/e2e.py): the simulator pinned to one core,
each client in its own process pinned to the other, client CPU µs per request beside
req/s for a bare aiohttp client and the full orchestrator (cold and warm), interleaved
rounds with their spread, a 50 ms latency scenario, sequential added latency, import
time and memory. `e2e-unpinned` is the older throughput-only comparison in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.messages import Request  # noqa: E402
from actors.policy.prompts import render_arc_prompt  # noqa: E402
from orchestrator.api import SIMULATOR_URL_ENV, Orchestrator  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402
from orchestrator.workload import arc_tasks  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator_process() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "simulator", "--port", str(port), "--latency", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"simulator exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _requests(count: int) -> list[Request]:
    tasks = arc_tasks(400)
    return [
        Request(task=tasks[i % len(tasks)], sample_index=i // len(tasks), request_id=f"bench-{i}")
        for i in range(count)
    ]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else 0.0


async def _bare(url: str, model: str, requests: list[Request], concurrency: int, max_tokens: int) -> dict[str, float]:
    bodies = [
        orjson.dumps(
            {
                "model": model,
                "messages": [{"role": m.role, "content": m.content} for m in render_arc_prompt(r.task)],  # type: ignore[arg-type]
                "max_tokens": max_tokens,
                "temperature": 0.7,
            }
        )
        for r in requests
    ]
    latencies: list[float] = []
    limiter = anyio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes) -> None:
            async with limiter:
                start = time.perf_counter()
                async with session.post(
                    f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    payload = orjson.loads(await resp.read())
                    assert payload["choices"][0]["message"]["content"]
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for body in bodies:
                tg.start_soon(one, body)
        elapsed = time.perf_counter() - started
    return {"rps": len(bodies) / elapsed, "p50_ms": _percentile(latencies, 0.5) * 1e3, "p99_ms": _percentile(latencies, 0.99) * 1e3}


async def _through_orchestrator(
    url: str,
    requests: list[Request],
    concurrency: int,
    state_dir: str,
    parts: tuple[bool, bool, bool] = (True, True, True),
) -> dict[str, float]:
    """`parts` switches the cache, the telemetry log and the ledger journal on or off."""
    os.environ[SIMULATOR_URL_ENV] = url
    from tools.benchmarks.overhead import with_parts

    config = with_parts(load_config(ROOT / "configs" / "simulated.yaml", state_dir=state_dir), parts, concurrency)
    latencies: list[float] = []
    async with Orchestrator.start(config) as orch:
        pinned = [attrs.evolve(r, tier="tier_1") for r in requests]
        limiter = anyio.Semaphore(concurrency)

        async def one(request: Request) -> None:
            async with limiter:
                start = time.perf_counter()
                result = await orch.generate(request)
                assert result.text
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for request in pinned:
                tg.start_soon(one, request)
        elapsed = time.perf_counter() - started
    return {"rps": len(requests) / elapsed, "p50_ms": _percentile(latencies, 0.5) * 1e3, "p99_ms": _percentile(latencies, 0.99) * 1e3}


def bench_e2e(count: int, concurrency: int, rounds: int) -> dict[str, Any]:
    requests = _requests(count)
    config = load_config(ROOT / "configs" / "simulated.yaml")
    tier = config.engine.router.tiers[0]
    model = config.engine.provider(tier.providers[0]).model
    rows = []
    ratios = []
    with simulator_process() as url:
        anyio.run(_bare, url, model, requests[:200], concurrency, tier.max_tokens)  # warm-up
        for round_no in range(rounds):
            bare = anyio.run(_bare, url, model, requests, concurrency, tier.max_tokens)
            with tempfile.TemporaryDirectory() as state:
                orch = anyio.run(_through_orchestrator, url, requests, concurrency, state)
            ratio = orch["rps"] / bare["rps"]
            ratios.append(ratio)
            rows.append((round_no + 1, f"{bare['rps']:.0f}", f"{orch['rps']:.0f}", f"{ratio:.2f}",
                         f"{bare['p50_ms']:.1f}", f"{orch['p50_ms']:.1f}", f"{bare['p99_ms']:.1f}", f"{orch['p99_ms']:.1f}"))
    print(render_table(
        ("round", "bare req/s", "orch req/s", "ratio", "bare p50 ms", "orch p50 ms", "bare p99 ms", "orch p99 ms"),
        rows,
        title=f"e2e: {count} ARC requests at concurrency {concurrency}, simulator in its own process",
    ))
    best = max(ratios)
    print(f"ratio orchestrator/bare: median {sorted(ratios)[len(ratios) // 2]:.2f}, best {best:.2f} (target ≥ 0.8)\n")
    return {"ratios": ratios}


def bench_ablation(count: int, concurrency: int) -> None:
    """Where the orchestrator's time goes: the same run with parts switched off."""
    requests = _requests(count)
    rows = []
    with simulator_process() as url:
        for label, parts in (
            ("router + in-memory ledger + provider actor", (False, False, False)),
            ("+ cache", (True, False, False)),
            ("+ telemetry", (False, True, False)),
            ("+ ledger journal", (False, False, True)),
            ("everything", (True, True, True)),
        ):
            with tempfile.TemporaryDirectory() as state:
                result = anyio.run(_through_orchestrator, url, requests, concurrency, state, parts)
            rows.append((label, f"{result['rps']:.0f}", f"{1000 / result['rps']:.2f}"))
    print(render_table(("configuration", "req/s", "ms per request"), rows,
                       title=f"ablation: {count} ARC requests at concurrency {concurrency}"))
    print()


def bench_cache_path(count: int, concurrency: int) -> None:
    """The same requests twice in one state directory: the first run misses, the second hits."""
    from tools.benchmarks.e2e import bare_reference

    requests = _requests(count)
    with simulator_process() as url, tempfile.TemporaryDirectory() as state:
        miss = anyio.run(_through_orchestrator, url, requests, concurrency, state)
        hit = anyio.run(_through_orchestrator, url, requests, concurrency, state)
    print(render_table(
        ("path through orch.generate", "req/s", "p50 ms", "p99 ms"),
        [("miss (provider call, cache store)", f"{miss['rps']:.0f}", f"{miss['p50_ms']:.1f}", f"{miss['p99_ms']:.1f}"),
         ("hit (cache lookup only)", f"{hit['rps']:.0f}", f"{hit['p50_ms']:.1f}", f"{hit['p99_ms']:.1f}")],
        title=f"cache path: {count} ARC requests at concurrency {concurrency}; hit/miss throughput "
              f"{hit['rps'] / miss['rps']:.2f}x; this machine's bare client {bare_reference():.0f} µs/request",
    ))
    print()


SECTIONS_STATING_BARE = frozenset({"routing", "features"})
"""Generic sections that measure and print the bare client themselves; every other one gets it printed after it."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "sections", nargs="*", default=["e2e", "ablation", "cachepath", "routing", "ledger", "cache", "telemetry"]
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="for `revisions`: the simulator's answer time in seconds (0.05 for the latency scenario)")
    parser.add_argument("--revisions", default="HEAD",
                        help="for `revisions`, `overhead`, `ask` and `batch`: comma-separated git revisions to measure side by side")
    parser.add_argument("--litellm", default=None,
                        help="for `serve`: the `litellm` executable of a venv with `litellm[proxy]`, measured beside `serve`")
    args = parser.parse_args(argv)
    bare: float | None = None  # this machine's bare client, measured once for the sections that state it
    for section in args.sections:
        if section == "e2e":
            from tools.benchmarks import e2e

            e2e.main(args.requests, args.concurrency, args.rounds)
            continue
        if section in ("e2e-arc", "e2e-text", "e2e-plain"):
            from tools.benchmarks import e2e

            e2e.run_cpu(args.requests, args.concurrency, args.rounds, workload=section.removeprefix("e2e-"))
            continue
        if section in ("text-revisions", "plain-revisions"):
            from tools.benchmarks import text_revisions

            text_revisions.run(args.revisions.split(",")[0], args.requests, args.concurrency, args.rounds,
                               workload=section.removesuffix("-revisions"))
            continue
        if section == "serve":
            from tools.benchmarks import serve

            serve.run(args.requests, args.concurrency, args.rounds, args.litellm)
            continue
        if section == "eval-speed":
            from tools.benchmarks import eval_speed

            eval_speed.main()
            bare = _state_bare(section, bare)
            continue
        if section == "journal-sync":
            from tools.benchmarks import journal_sync

            journal_sync.main(args.requests, args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "value-routing":
            from tools.benchmarks import value_routing

            value_routing.main()
            continue
        if section == "all-down":
            from tools.benchmarks import all_down

            all_down.main()
            continue
        if section == "overhead":
            from tools.benchmarks import overhead

            if args.revisions != "HEAD":
                overhead.run_revisions(args.revisions.split(","), args.requests, args.rounds)
            else:
                overhead.main(args.requests, args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "batch":
            from tools.benchmarks import batch

            batch.run_revisions(args.revisions.split(","), args.requests, args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "ask":
            from tools.benchmarks import ask

            ask.run_revisions(args.revisions.split(","), args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "revisions":
            from tools.benchmarks import e2e

            e2e.run_revisions(args.revisions.split(","), args.requests, args.concurrency, args.rounds, args.latency)
            continue
        if section == "latency-parts":
            from tools.benchmarks import e2e

            e2e.run_latency_parts(args.requests, args.concurrency, args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "timeline":
            from tools.benchmarks import timeline

            timeline.run(args.requests, args.concurrency, args.rounds)
            bare = _state_bare(section, bare)
            continue
        if section == "e2e-unpinned":
            bench_e2e(args.requests, args.concurrency, args.rounds)
            continue
        if section == "cachepath":
            bench_cache_path(args.requests, args.concurrency)
            continue
        if section == "ablation":
            bench_ablation(args.requests, args.concurrency)
            continue
        module = __import__(f"tools.benchmarks.{section}", fromlist=["run"])
        module.main() if hasattr(module, "main") else print(module.run())
        if section not in SECTIONS_STATING_BARE:
            bare = _state_bare(section, bare)
    return 0


def _state_bare(section: str, bare: float | None) -> float:
    """Print this machine's bare client beside a section's figures (measured at the first call of a run)."""
    from tools.benchmarks.e2e import bare_reference

    bare = bare if bare is not None else bare_reference()
    print(f"({section}: this machine's bare aiohttp client, measured in this run: {bare:.0f} µs/request)\n")
    return bare



if __name__ == "__main__":
    sys.exit(main())

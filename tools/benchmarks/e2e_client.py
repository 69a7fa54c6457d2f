"""One measured client of the e2e benchmark, run in its own (pinned) process.

    python tools/benchmarks/e2e_client.py MODE SIMULATOR_URL REQUESTS CONCURRENCY STATE_DIR [PARTS]

MODE is `bare` (aiohttp to the simulator), `cold` or `warm` (the full orchestrator
path: routing, durable ledger, cache, telemetry; PARTS, a variant of
`variants.VARIANTS` such as "no journal", switches some off), on ARC tasks pinned to
tier_1; or the text workload: `bare-text`, `text-pinned` (tier_1) and `text-routed`
(the router estimates and chooses), distinct 760-character coding prompts; or plain
text: `bare-plain` and `plain-routed`, GSM8K's word problems made distinct (the shipped
configs route plain text by the learned text default). Each orchestrated client is
warmed by an unmeasured pass of other prompts. Both sides treat the
garbage collector as `orchestrator run` and `serve` do: frozen once set up
(`gc.freeze`), young collections every 10,000 allocations. So neither side's figures
include a collector setting the other lacks. Prints one JSON line: req/s, client CPU
µs per request (getrusage of this process, all threads), p50/p99 ms, peak RSS.
"""

from __future__ import annotations

import gc
import inspect
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import orjson

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from actors.messages import CachePolicy, Request  # noqa: E402
from actors.policy.prompts import render_arc_prompt  # noqa: E402
from orchestrator.api import SIMULATOR_URL_ENV, Orchestrator  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.workload import arc_tasks  # noqa: E402


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else 0.0


def arc_bench_requests(count: int, offset: int = 0) -> list[Request]:
    tasks = arc_tasks(400)
    return [
        Request(task=tasks[i % len(tasks)], sample_index=offset + i // len(tasks), request_id=f"bench-{offset}-{i}",
                tier="tier_1")
        for i in range(count)
    ]


async def timed(send: Any, items: list[Any], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    limiter = anyio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with limiter:
            start = time.perf_counter()
            await send(item)
            latencies.append(time.perf_counter() - start)

    cpu = _cpu_s()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for item in items:
            tg.start_soon(one, item)
    elapsed = time.perf_counter() - started
    spent = _cpu_s() - cpu
    return {
        "rps": len(items) / elapsed,
        "cpu_us": spent / len(items) * 1e6,
        "p50_ms": _percentile(latencies, 0.5) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
    }


def text_bench_requests(count: int, seed: int, tier: str | None) -> list[Request]:
    from orchestrator.workload import text_requests  # here: older revisions' trees run only `warm`

    return text_requests(count, 760, seed=seed, tier=tier)


GSM8K = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"


def gsm8k_questions() -> list[str]:
    """GSM8K's 1,319 word problems (../shared/data): plain text, which the shipped configs route by the learned model."""
    import csv

    with GSM8K.open(newline="") as handle:
        return [row["prompt"] for row in csv.DictReader(handle)]


def plain_bench_requests(count: int, seed: int) -> list[Request]:
    """Plain text: GSM8K's word problems, each made distinct by a numbered line, so nothing is answered from the
    cache or the estimator's memo; `seed` picks a disjoint numbering."""
    questions = gsm8k_questions()
    return [Request.prompt(f"{questions[i % len(questions)]}\n(Exercise {seed}-{i}.)") for i in range(count)]


async def bare(url: str, count: int, concurrency: int, model: str, max_tokens: int, workload: str) -> dict[str, float]:
    from orchestrator.assembly import YOUNG_COLLECTION_THRESHOLD  # here: older revisions' trees run only `warm`

    requests = {"text": lambda: text_bench_requests(count, 1, None), "plain": lambda: plain_bench_requests(count, 1),
                "arc": lambda: arc_bench_requests(count)}[workload]()
    bodies = [
        orjson.dumps({
            "model": model,
            "messages": [{"role": m.role, "content": m.content}
                         for m in (r.messages or render_arc_prompt(r.task))],  # type: ignore[arg-type]
            "max_tokens": max_tokens,
            "temperature": 0.7,
        })
        for r in requests
    ]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])

        async def send(body: bytes) -> None:
            async with session.post(f"{url}/v1/chat/completions", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                assert orjson.loads(await resp.read())["choices"][0]["message"]["content"]

        return await timed(send, bodies, concurrency)


async def orchestrated(url: str, count: int, concurrency: int, state: str, mode: str, parts: str = "") -> dict[str, float]:
    os.environ[SIMULATOR_URL_ENV] = url
    config = load_config(ROOT / "configs" / "simulated.yaml", state_dir=state)
    if parts:
        from tools.benchmarks.variants import VARIANTS, with_parts

        config = with_parts(config, VARIANTS[parts], concurrency)
    else:
        engine = attrs.evolve(
            config.engine, providers=tuple(attrs.evolve(p, max_concurrency=concurrency) for p in config.engine.providers)
        )
        config = attrs.evolve(config, engine=engine)
    if mode.startswith("text"):
        tier = "tier_1" if mode == "text-pinned" else None
        measured, warmup = text_bench_requests(count, 1, tier), text_bench_requests(count, 2, tier)
    elif mode == "plain-routed":
        measured, warmup = plain_bench_requests(count, 1), plain_bench_requests(count, 2)
    else:
        measured = arc_bench_requests(count)
        warmup = arc_bench_requests(count, offset=10**6) if mode == "warm" else []
    async with _start(config) as orch:
        if warmup:
            await timed(orch.generate, [attrs.evolve(r, cache=CachePolicy.OFF) for r in warmup], concurrency)

        async def send(request: Request) -> None:
            assert (await orch.generate(request)).text

        return await timed(send, measured, concurrency)


def _start(config: Any) -> Any:
    """Started as `orchestrator run` starts it: the collector frozen after start-up where this revision can."""
    if "freeze_gc" in inspect.signature(Orchestrator.start).parameters:
        return Orchestrator.start(config, freeze_gc=True)
    return Orchestrator.start(config)


def main() -> None:
    mode, url, count, concurrency, state = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    if mode in ("bare", "bare-text", "bare-plain"):
        config = load_config(ROOT / "configs" / "simulated.yaml", state_dir=state)
        tier = config.engine.router.tiers[0]
        model = config.engine.provider(tier.providers[0]).model
        workload = {"bare": "arc", "bare-text": "text", "bare-plain": "plain"}[mode]
        figures = anyio.run(bare, url, count, concurrency, model, tier.max_tokens, workload)
    else:
        parts = sys.argv[6] if len(sys.argv) > 6 else ""
        figures = anyio.run(orchestrated, url, count, concurrency, state, mode, parts)
    figures["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()

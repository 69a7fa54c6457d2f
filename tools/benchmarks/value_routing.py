"""Deciding by value over eleven tiers: the latency of `Orchestrator.decide` with a learned router.

    python tools/bench.py value-routing

A synthetic 11-model outcome table (seeded; success falls with "hard" words and rises
with the model's rank, cost grows 1.6x a rank) is fitted with `learned.fit`, and an
orchestrator on the simulator gets eleven paid tiers (their prices rising the same
way) with `value_lambda`. Distinct 760-character prompts are decided one at a time;
the table gives p50 and p99 of `decide` (estimate, value ranking, selection). A second
row routes the same tiers by value without a model: P(success) from the text rules'
score and each tier's `quality`.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import anyio

from actors.policy import learned
from orchestrator import Orchestrator
from orchestrator.config import load_config
from orchestrator.lab.outcomes import build_table
from orchestrator.tables import render_table
from orchestrator.workload import text_requests
from tools.benchmarks.routing import pass_figures

TIERS = 11
HARD = ("recursion", "concurrency", "proof", "distributed")


def synthetic_table(rows: int, seed: int = 0) -> object:
    rng = random.Random(seed)
    records = []
    for index, request in enumerate(text_requests(rows, 400, seed=seed + 100)):
        prompt = request.messages[0].content + (" " + rng.choice(HARD) if index % 3 == 0 else "")
        hard = any(word in prompt for word in HARD)
        record: dict[str, object] = {"prompt": prompt}
        for tier in range(TIERS):
            chance = min(0.98, max(0.02, 0.35 + 0.055 * tier - (0.3 if hard else 0.0)))
            record[f"m{tier:02d}"] = rng.random() < chance
            record[f"m{tier:02d}_cost"] = round(0.0001 * 1.6**tier, 9)
        records.append(record)
    return build_table(records, "synthetic-11")


def config_text(model_path: Path | None, value_lambda: float) -> str:
    """Eleven paid tiers, prices rising 1.6x a rank; P(success) from the model at `model_path`, or (None) from
    the text rules and each tier's `quality` (0.35 + 0.055 a rank, as the synthetic table's success rates)."""
    levels = ", ".join(f"l{t:02d}: {round((t + 1) / TIERS, 4)}" for t in range(TIERS))
    tiers = "".join(
        f"    t{t:02d}: {{cost_per_million_tokens: {round(0.1 * 1.6**t, 6)}, max_tokens: 512, temperature: 0, "
        f"level: l{t:02d}, escalation_only: false, api_endpoint: 'simulator:/v1', protocol: openai, model: m{t:02d}"
        + ("" if model_path else f", quality: {round(0.35 + 0.055 * t, 3)}") + "}\n"
        for t in range(TIERS)
    )
    estimator = f"    estimator: learned\n    model_path: {model_path}\n" if model_path else "    estimator: text\n"
    return (
        "llm_routing:\n  complexity_detection:\n" + estimator
        + f"    value_lambda: {value_lambda}\n    thresholds: {{{levels}}}\n"
        "  optimization: {budget_limit: 10}\n  model_tiers:\n" + tiers
    )


async def measure(count: int, with_model: bool = True, passes: int = 3) -> tuple[float, float, float]:
    """(p50, p99) of one pass of `decide`, and the p99 of each request's best of `passes` fresh passes (the code's
    own tail: a pass's slowest 1% on these machines are the machine's, docs/BENCHMARKS.md)."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        model_path = directory / "m11.npz" if with_model else None
        if model_path is not None:
            learned.save(learned.fit(synthetic_table(1200)), model_path)  # type: ignore[arg-type]
        (directory / "c.yaml").write_text(config_text(model_path, 0.2))
        config = load_config(directory / "c.yaml", state_dir=directory / "state", environ={})
        runs = []
        for _ in range(passes):
            samples = []
            async with Orchestrator.start(config) as orch:
                for request in text_requests(count, 760, seed=7):
                    started = time.perf_counter()
                    orch.decide(request)
                    samples.append(time.perf_counter() - started)
            runs.append(samples)
    return pass_figures(runs)


def main(count: int = 2000) -> None:
    rows = []
    for name, with_model in (("learned", True), ("text rules + tier quality", False)):
        p50, p99, best = anyio.run(measure, count, with_model)
        rows.append((f"{name}, value_lambda 0.2, 11 tiers, 760-character prompts", f"{p50:.0f}", f"{p99:.0f}",
                     f"{best:.0f}"))
    from tools.benchmarks.e2e import bare_reference

    print(render_table(("decision", "p50 µs", "p99 µs", "p99 of each request's best of 3 µs"), rows,
                       title="routing by value: Orchestrator.decide over eleven tiers (target p99 <= 150 µs); this "
                             f"machine's bare client {bare_reference():.0f} µs/request"))
    print()

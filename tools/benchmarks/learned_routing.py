"""Learned-router decision latency (features + model + select, no I/O), and the GSM8K replay figures.

    python -m tools.benchmarks.learned_routing [--data TABLE]

Decisions use configs/gsm8k_recorded.yaml (the learned router, two tiers) on the table's
prompts, on 30,000-character prompts (hashing is capped at 4,000 characters) and on
ARC tasks (rendered prompt plus grid features).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.messages import Request
from actors.policy.estimators import build_estimator
from actors.policy.prompts import render_arc_prompt
from actors.router.selection import RoutingContext, select
from orchestrator.config import load_config
from orchestrator.lab.evaluation import evaluate
from orchestrator.lab.outcomes import read_table
from orchestrator.tables import render_table
from orchestrator.workload import arc_requests

ROOT = Path(__file__).resolve().parent.parent.parent
GSM8K = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (ordered[len(ordered) // 2] * 1e6, ordered[int(0.99 * (len(ordered) - 1))] * 1e6, ordered[-1] * 1e6)


def latency(prompts: list[str]) -> dict[str, tuple[float, float, float]]:
    config = load_config(ROOT / "configs" / "gsm8k_recorded.yaml", environ={})
    providers = {p.name: p for p in config.engine.providers}
    router = config.engine.router
    estimator = build_estimator(router.estimator)

    def decide(request: Request) -> None:
        messages = request.messages or render_arc_prompt(request.task)  # type: ignore[arg-type]
        estimate = estimator.estimate(request)
        context = RoutingContext(frozenset(providers), 1.0, providers, prompt_token_upper_bound(messages),
                                 prompt_token_estimate(messages))
        select(estimate, request, router, context)

    results = {}
    for label, requests in (
        ("GSM8K prompts", [Request.prompt(p) for p in prompts]),
        ("30,000-character prompts", [Request.prompt(f"case {i} " + "word " * 6000) for i in range(200)]),
        ("ARC tasks, first sight", arc_requests(1000)),
    ):
        for request in requests[:20]:
            decide(request)
        samples = []
        for request in requests:
            start = time.perf_counter()
            decide(request)
            samples.append(time.perf_counter() - start)
        results[label] = _percentiles(samples)
    return results


def main(argv: list[str] | None = None) -> None:
    """`argv` as a script's (`python -m tools.benchmarks.learned_routing --data T`); none from tools/bench.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=GSM8K)
    args = parser.parse_args(argv or [])
    table = read_table(args.data)
    results = latency(list(table.prompts))
    print(render_table(("learned routing decision", "p50 µs", "p99 µs", "max µs"),
                       [(k, f"{a:.0f}", f"{b:.0f}", f"{c:.0f}") for k, (a, b, c) in results.items()],
                       title="learned-router decision latency (features + model + select, no I/O)"))
    start = time.perf_counter()
    evaluation = evaluate(table)
    elapsed = time.perf_counter() - start
    rows = [(r.name, f"{r.two_tier.apgr:.3f}") for r in evaluation.results]
    print()
    print(render_table(("router", "APGR"), rows, title=f"{args.data.name}: 5-fold replay in {elapsed:.1f} s"))


if __name__ == "__main__":
    main(sys.argv[1:])

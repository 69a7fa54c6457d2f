"""Routing decision latency (estimate + select, no I/O) for ARC and text tasks."""

from __future__ import annotations

import time
from pathlib import Path

from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.messages import Request
from actors.router.estimators import build_estimator
from actors.router.prompts import render_arc_prompt
from actors.router.selection import RoutingContext, select
from orchestrator.tables import render_table
from orchestrator.config import load_config
from orchestrator.workload import arc_requests

ROOT = Path(__file__).resolve().parent.parent.parent
TEXTS = [
    "Fix typo in README.md",
    "Implement user authentication with JWT tokens in auth.py and middleware.py",
    "Design a distributed system architecture with async message queues for high throughput",
    "Fix the security vulnerability in production: SQL injection in the login endpoint",
]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(0.99 * (len(ordered) - 1))] * 1e6


def run(n: int = 2000) -> dict[str, tuple[float, float]]:
    config = load_config(ROOT / "configs" / "simulated.yaml", environ={})
    providers = {p.name: p for p in config.engine.providers}
    router = config.engine.router

    def decide(estimator: object, request: Request) -> None:
        messages = request.messages or render_arc_prompt(request.task)  # type: ignore[arg-type]
        estimate = estimator.estimate(request)  # type: ignore[attr-defined]
        context = RoutingContext(frozenset(providers), 1.0, providers, prompt_token_upper_bound(messages),
                                 prompt_token_estimate(messages))
        select(estimate, request, router, context)

    results = {}
    arc = arc_requests(n)
    for label, requests, fresh in (
        ("ARC, first sight of each task", arc, True),
        ("ARC, task seen before (memoised)", arc, False),
        ("text (coding rules)", [Request.prompt(TEXTS[i % 4] + f" #{i}") for i in range(n)], True),
    ):
        estimator = build_estimator(router.estimator)
        if not fresh:
            for request in requests:
                decide(estimator, request)
        samples = []
        for request in requests:
            start = time.perf_counter()
            decide(estimator, request)
            samples.append(time.perf_counter() - start)
        results[label] = _percentiles(samples)
    return results


def main() -> None:
    results = run()
    print(render_table(("routing decision", "p50 µs", "p99 µs"),
                       [(k, f"{p50:.0f}", f"{p99:.0f}") for k, (p50, p99) in results.items()],
                       title="routing decision latency (estimate + select, no I/O)"))
    print()


if __name__ == "__main__":
    main()

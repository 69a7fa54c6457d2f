"""`orchestrator run`: the standalone loop over a workload, with a summary table.

With no arguments it is the demo: configs/simulated.yaml, the simulator in-process,
100 ARC training tasks through the full actor path. The summary says where the money
went and what the same workload would have cost on the top paid tier alone.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio
import attrs
import orjson

from actors.errors import BudgetExceeded, InvalidRequest, OrchestratorError
from actors.messages import Request, Result
from actors.money import format_usd, token_cost_nd
from actors.telemetry.replay import recorded_requests
from orchestrator.api import Orchestrator
from orchestrator.cli.drain import serve_until_stopped
from orchestrator.cli.options import EXIT_INTERRUPTED, POSITIVE_SECONDS, int_range
from orchestrator.cli.preflight import preflight
from orchestrator.config import Config, default_config_path, load_config
from orchestrator.platforms import PLATFORMS
from orchestrator.simulator.recorded import RecordedRun, is_outcome_table, render_grade
from orchestrator.tables import ProgressBar, render_table
from orchestrator.workload import ARC_TRAINING_TASKS, arc_requests, load_jsonl


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="route a workload (ARC tasks or a JSONL file) and print where the money went",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--tasks", type=int_range(1, ARC_TRAINING_TASKS), default=100,
                        help=f"number of ARC training tasks, 1 to {ARC_TRAINING_TASKS} (default 100)")
    parser.add_argument("--requests", type=Path, default=None,
                        help="a JSONL workload instead of ARC tasks, or an outcome table (answered from its recorded responses)")
    parser.add_argument("--concurrency", type=int_range(1, 100_000), default=None,
                        help="requests in flight at once (default: the config's batch_concurrency)")
    parser.add_argument("--state-dir", type=Path, default=None, help="ledger journal, cache and telemetry live here")
    parser.add_argument("--platform", choices=PLATFORMS, default=None,
                        help="use this platform's profile instead of the detected one (docs: orchestrator/platforms.py)")
    parser.add_argument("--telemetry", type=Path, default=None, help="telemetry log directory (default: STATE_DIR/telemetry)")
    parser.add_argument("--chaos", action="store_true", help="inject simulator faults: random failures and an outage")
    parser.add_argument("--replay", type=Path, default=None,
                        help="re-run the workload this telemetry log recorded, from its recorded answers, at no cost")
    parser.add_argument("--passthrough", action="store_true", help="with --replay: send unrecorded requests to providers")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--grace", type=POSITIVE_SECONDS, default=10.0,
                        help="on SIGTERM or SIGINT, seconds the requests in flight have to finish before they are "
                             "cancelled (default 10); the partial summary is printed and the exit status is 130")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if args.passthrough and args.replay is None:
        args.parser.error("--passthrough only applies with --replay LOG")
    config = load_config(args.config or default_config_path(), state_dir=args.state_dir, platform=args.platform)
    if args.telemetry is not None:
        config = attrs.evolve(
            config,
            engine=attrs.evolve(
                config.engine, telemetry=attrs.evolve(config.engine.telemetry, dir=str(args.telemetry))
            ),
        )
    if args.chaos:
        config = with_chaos(config)
        print("chaos: faults injected and the cache bypassed, so every request meets them", file=sys.stderr)
    recorded = RecordedRun.prepare(args.requests, config) if args.requests and is_outcome_table(args.requests) else None
    if recorded is not None:
        config, requests = recorded.config, recorded.requests()
    elif args.requests:
        requests = load_jsonl(args.requests)
    elif args.replay is not None:
        requests = recorded_requests(args.replay)
    else:
        requests = arc_requests(args.tasks)
    if not requests:
        raise InvalidRequest(f"{args.requests or args.replay}: no requests in it")
    if args.replay is None or args.passthrough:
        config = preflight(config)
    summary = anyio.run(
        _run, config, requests, args.concurrency, not args.json, args.replay, args.passthrough,
        recorded, args.grace,
    )
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_summary(summary))
        if "recorded" in summary:
            print(render_grade(summary["recorded"]))
    if summary.get("interrupted"):
        return EXIT_INTERRUPTED
    if summary["failed"]:
        return 3 if summary["budget_exceeded"] == summary["failed"] else 1
    return 0


async def _run(
    config: Config,
    requests: list[Request],
    concurrency: int | None,
    show_progress: bool,
    replay: Path | None = None,
    passthrough: bool = False,
    recorded: RecordedRun | None = None,
    grace_s: float = 10.0,
) -> dict[str, Any]:
    """With `recorded`, each answer's recorded score is also given as its feedback (`orch.feedback`), as a
    caller grading it would: the A/B comparison and the online learner see what the table says."""
    bar = ProgressBar(len(requests), "routing") if show_progress else None

    async with Orchestrator.start(config, replay_log=replay, replay_passthrough=passthrough, freeze_gc=True) as orch:

        def on_done(index: int, outcome: Result | OrchestratorError) -> None:
            if bar is not None:
                bar.advance(isinstance(outcome, Result))
            if recorded is not None and isinstance(outcome, Result):
                orch.feedback(outcome.request_id, recorded.score(index, outcome))

        outcomes, interrupted = await serve_until_stopped(
            orch, requests, concurrency=concurrency or config.engine.batch_concurrency, grace_s=grace_s, on_done=on_done,
        )
        if bar is not None:
            bar.close()
        health = orch.health()
        routing = orch.routing_stats()
        held = await _held(orch)
    summary = summarize(config, outcomes, health, routing)
    if held is not None:
        summary["held_nd"], summary["outstanding"] = held
        summary["held_usd"] = format_usd(summary["held_nd"], 6)
    if interrupted is not None:
        summary["interrupted"] = attrs.asdict(interrupted)
    summary["state_dir"] = str(config.state_dir.resolve())
    if recorded is not None and interrupted is None:
        summary["recorded"] = recorded.grade(outcomes)
    return summary


async def _held(orch: Orchestrator) -> tuple[int, int] | None:
    """The money the ledger holds for calls whose outcome is unknown, and its open reservations, once the run's
    requests have ended: a total that leaves it out would understate what the run may have cost. None when nothing
    is held, or the ledger cannot say (the summary is printed all the same)."""
    try:
        status = await orch.budget()
    except OrchestratorError:
        return None
    return (status.unreconciled_nd, status.outstanding) if status.unreconciled_nd else None


def with_chaos(config: Config) -> Config:
    """Random failures on every route and a 4-second outage of the cheapest tier's provider."""
    first = config.engine.router.tiers[0].providers[0]
    model = config.engine.provider(first).model
    chaos = {
        "faults": [
            {"kind": "server_error", "rate": 0.15},
            {"kind": "rate_limit", "rate": 0.05, "retry_after": 0.2},
            {"kind": "drop", "model": model, "schedule": [[0.3, 4.0]]},
        ]
    }
    simulator = dict(config.simulator or {})
    simulator.update(chaos)
    engine = attrs.evolve(
        config.engine,
        retry=attrs.evolve(config.engine.retry, initial_s=0.05, cap_s=0.5),
        breaker=attrs.evolve(
            config.engine.breaker, backoff_initial_s=0.05, backoff_cap_s=0.5, cooldown_s=1.0, window_s=10.0
        ),
    )
    return attrs.evolve(config, engine=attrs.evolve(engine, cache=attrs.evolve(engine.cache, enabled=False)),
                        simulator=simulator)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def summarize(
    config: Config,
    outcomes: list[Result | OrchestratorError],
    health: dict[str, dict[str, object]],
    routing: dict[str, object],
) -> dict[str, Any]:
    results = [o for o in outcomes if isinstance(o, Result)]
    errors = [o for o in outcomes if not isinstance(o, Result)]
    tiers = config.engine.router.tiers
    paid = [t for t in tiers if not t.local]
    top = config.engine.provider(paid[-1].providers[0]) if paid else None
    per_tier: dict[str, dict[str, int]] = defaultdict(lambda: Counter())  # type: ignore[arg-type]
    for result in results:
        row = per_tier[result.tier]
        row["requests"] += 1
        row["input_tokens"] += result.input_tokens
        row["output_tokens"] += result.output_tokens
        row["cost_nd"] += result.cost_nd
        row["cached"] += int(result.cached)
        row["saved_nd"] += result.saved_nd
    total_cost = sum(r.cost_nd for r in results)
    top_cost = (
        sum(
            token_cost_nd(r.input_tokens, top.input_price_nd_per_mtok)
            + token_cost_nd(r.output_tokens, top.output_price_nd_per_mtok)
            for r in results
        )
        if top
        else 0
    )
    latencies = [r.latency_s for r in results]
    attempts_failed = Counter(a.outcome for r in results for a in r.attempts if a.outcome != "ok")
    return {
        "requests": len(outcomes),
        "succeeded": len(results),
        "failed": len(errors),
        "budget_exceeded": sum(isinstance(e, BudgetExceeded) for e in errors),
        "errors": dict(Counter(getattr(e, "code", type(e).__name__) for e in errors)),
        "error_causes": {getattr(e, "code", type(e).__name__): str(e)[:400] for e in errors},
        "tiers": {
            **{t.name: {"label": t.label, **dict(per_tier.get(t.name, Counter()))} for t in tiers},
            **{name: {"label": "(replayed: not in this config)", **dict(row)}  # or the table would not add up
               for name, row in per_tier.items() if name not in config.engine.router.tier_named},
        },
        "cost_nd": total_cost,
        "cost_usd": format_usd(total_cost, 6),
        "top_tier": top.model if top else None,
        "top_tier_cost_nd": top_cost,
        "top_tier_cost_usd": format_usd(top_cost, 6),
        "cached": sum(r.cached for r in results),
        "replayed": sum(r.replayed for r in results),
        "saved_nd": sum(r.saved_nd for r in results),
        "saved_usd": format_usd(sum(r.saved_nd for r in results), 6),
        "fallbacks": sum(r.fallbacks > 0 for r in results),
        "retries": sum(max(0, len(r.attempts) - 1) for r in results),
        "failed_attempts": dict(attempts_failed),
        "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "routing": routing,
        "circuits": {
            name: {"state": h["state"], "restarts": h["restarts"]}
            for name, h in health.items()
            if name not in ("ledger", "cache", "telemetry")
        },
    }


def render_summary(summary: dict[str, Any]) -> str:
    rows = []
    total = max(summary["succeeded"], 1)
    for name, row in summary["tiers"].items():
        count = row.get("requests", 0)
        rows.append(
            (
                name,
                row["label"],
                count,
                f"{100 * count / total:.0f}%",
                row.get("input_tokens", 0),
                row.get("output_tokens", 0),
                format_usd(row.get("cost_nd", 0), 6),
                row.get("cached", 0),
            )
        )
    parts = [
        render_table(
            ("tier", "model", "requests", "share", "tokens in", "tokens out", "cost", "cached"),
            rows,
            title=f"{summary['succeeded']} of {summary['requests']} requests answered",
        ),
        "",
        f"total cost            {summary['cost_usd']}",
        *([f"held                  {summary['held_usd']} on {summary['outstanding']} reservations: calls whose outcome is "
           "unknown, counted as spent until `orchestrator budget reconcile`"] if "held_nd" in summary else []),
        f"all on {summary['top_tier']:<14} {summary['top_tier_cost_usd']}  (same tokens at the top paid tier's prices)",
        f"cache                 {summary['cached']} hits, {summary['replayed']} replayed, {summary['saved_usd']} saved",
        f"latency               p50 {summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms",
        f"fallbacks / retries   {summary['fallbacks']} requests fell back, {summary['retries']} extra attempts",
    ]
    if summary["failed_attempts"]:
        parts.append(
            "failed attempts       "
            + ", ".join(f"{k} {v}" for k, v in sorted(summary["failed_attempts"].items()))
        )
    troubled = {n: c for n, c in summary["circuits"].items() if c["restarts"] or c["state"] != "closed"}
    if troubled:
        parts.append(
            "circuits              "
            + ", ".join(f"{n}: {c['state']} after {c['restarts']} restarts" for n, c in troubled.items())
        )
    if summary["failed"]:
        parts.append(
            "failed                "
            + ", ".join(f"{code} {count}" for code, count in summary["errors"].items())
        )
        for code, cause in summary["error_causes"].items():
            parts.append(f"  last {code}: {cause}")
    if summary.get("interrupted"):
        stop = summary["interrupted"]
        parts.append(
            f"interrupted           by {stop['signal']}: {summary['requests']} ended, {stop['cancelled']} cancelled "
            f"at the end of the grace period (money settled, released or held), {stop['not_started']} not started"
        )
    if "state_dir" in summary:
        parts.append(f"state                 {summary['state_dir']} (ledger, cache, telemetry)")
    return "\n".join(parts)

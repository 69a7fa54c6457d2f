"""`orchestrator routing`: measure routers on outcome tables, fit the learned one, convert history.

    orchestrator routing eval --data ../shared/data/routellm-gsm8k/gsm8k_responses.csv
    orchestrator routing fit --data TABLE --out configs/models/router.npz
    orchestrator routing history --telemetry .orchestrator/telemetry --out history.jsonl
    orchestrator routing requests --data TABLE --out requests.jsonl
    orchestrator routing subset --data TABLE --fold 0/2 --out half.jsonl

`--holdout K/N` (fit) and `--fold K/N` (subset) cut the table the same way (fold K of
N, seed 0): fit on the rest, then `orchestrator run --requests half.jsonl` measures the
fitted router end to end on prompts it never saw.

An outcome table (CSV or JSONL; docs/ROUTING.md) gives, per prompt, each model's score.
`eval` replays every router over it (the learned one k-fold cross-validated, never
scoring a prompt it was fitted on) and prints APGR, CPT(50%), CPT(80%), the cost to
reach 95% of the strongest model's quality and the quality–cost curve.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import orjson

from actors.policy import learned
from actors.policy.value import lambda_for_cost, lambda_for_quality
from orchestrator.cli.options import float_range, int_range, written_over
from orchestrator.files import write_private
from orchestrator.lab.evaluation import ROUTERS, Evaluation, SplitSpread, cross_validated, fold_of, repeated
from orchestrator.lab.history import table_from_telemetry
from orchestrator.lab.metrics import LAMBDAS
from orchestrator.lab.outcomes import OutcomeTable, read_table, table_to_jsonl
from orchestrator.routing_plot import write_plot
from orchestrator.tables import render_table

CURVE_SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "routing", help="evaluate routers on outcome tables, fit the learned router", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="routing_command", metavar="ACTION", required=True)

    ev = commands.add_parser("eval", help="replay routers over an outcome table (k-fold for the learned one)")
    ev.add_argument("--data", type=Path, required=True, help="outcome table, CSV or JSONL")
    ev.add_argument("--router", action="append", choices=ROUTERS, default=None,
                    help="evaluate only this router (repeatable; default: all)")
    ev.add_argument("--folds", type=int_range(2, 1000), default=5,
                    help="cross-validation folds for the learned router, 2 to 1000 (default 5)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the fold split and of tie-breaking (default 0)")
    ev.add_argument("--repeats", type=int_range(1, 100), default=1,
                    help="replay over this many fold splits (seeds SEED, SEED+1, ...) and print each router's "
                         "APGR mean and range over them, 1 to 100 (default 1)")
    ev.add_argument("--models", default=None, help="comma-separated models to keep (default: all)")
    ev.add_argument("--json", action="store_true", help="print one JSON object, each router under its name")
    ev.add_argument("--plot", type=Path, default=None, help="write the curves as an HTML page with SVG")
    ev.set_defaults(func=run_eval)

    value_parser = commands.add_parser(
        "value", help="the value_lambda that keeps a share of the best tier's accuracy on a table, cross-validated")
    value_parser.add_argument("--data", type=Path, required=True, help="outcome table with three or more models")
    target = value_parser.add_mutually_exclusive_group()
    target.add_argument("--quality", type=float_range(0.0, 1.0), default=None,
                        help="share of the best single tier's accuracy to keep: the cheapest λ that does (default 0.95)")
    target.add_argument("--cost-share", type=float_range(0.0, 1.0), default=None,
                        help="share of always-dearest's cost to stay within: the most accurate λ that does")
    value_parser.add_argument("--folds", type=int_range(2, 1000), default=5)
    value_parser.add_argument("--models", default=None, help="comma-separated models to keep (default: all)")
    value_parser.add_argument("--json", action="store_true")
    value_parser.set_defaults(func=run_value)

    fit = commands.add_parser("fit", help="fit the learned router on a table, or on a telemetry log's feedback")
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="outcome table, CSV or JSONL")
    source.add_argument("--telemetry", type=Path,
                        help="telemetry log directory: every answer the caller scored (orch.feedback) is a row, "
                             "the answering tier's score and cost (as `routing history` reads it)")
    fit.add_argument("--success-at", type=float_range(-1e12, 1e12), default=None,
                     help="with --telemetry: the feedback score counted as success (needed when scores are not in [0, 1])")
    fit.add_argument("--out", type=Path, required=True, help="model file (.npz) the config's model_path names")
    fit.add_argument("--models", default=None, help="comma-separated models to keep (default: all)")
    fit.add_argument("--holdout", type=_fold, default=None, metavar="K/N", help="leave out fold K of N (seed 0)")
    fit.set_defaults(func=run_fit)

    subset = commands.add_parser("subset", help="one fold of a table, as an outcome table (JSONL)")
    subset.add_argument("--data", type=Path, required=True)
    subset.add_argument("--fold", type=_fold, required=True, metavar="K/N", help="fold K of N (seed 0)")
    subset.add_argument("--out", type=Path, required=True)
    subset.set_defaults(func=run_subset)

    history = commands.add_parser("history", help="a telemetry log's scored requests as an outcome table (JSONL)")
    history.add_argument("--telemetry", type=Path, required=True, help="telemetry log directory")
    history.add_argument("--out", type=Path, required=True)
    history.add_argument("--success-at", type=float_range(-1e12, 1e12), default=None,
                         help="feedback score counted as success (needed when scores are not in [0, 1])")
    history.set_defaults(func=run_history)

    requests = commands.add_parser("requests", help="a table's prompts as a JSONL workload for `orchestrator run`")
    requests.add_argument("--data", type=Path, required=True)
    requests.add_argument("--out", type=Path, required=True)
    requests.set_defaults(func=run_requests)


def _fold(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (e.g. 0/2)") from None
    if not (n >= 2 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"{text!r}: need N >= 2 and 0 <= K < N")
    return k, n


def _in_fold(table: OutcomeTable, fold: tuple[int, int]) -> np.ndarray:
    return fold_of(len(table), fold[1], seed=0) == fold[0]


def _load(path: Path, models: str | None) -> OutcomeTable:
    table = read_table(path)
    return table.select([m.strip() for m in models.split(",")]) if models else table


def _writes_over_its_table(args: argparse.Namespace, command: str) -> bool:
    """Whether --out or --plot names the table --data reads (said on stderr): it would be gone, replaced."""
    data = getattr(args, "data", None)
    for option in ("out", "plot"):
        out = getattr(args, option, None)
        if data is not None and out is not None and written_over(out, [data]) is not None:
            print(f"orchestrator routing {command}: --{option} {out} is the table --data reads; write it to another file",
                  file=sys.stderr)
            return True
    return False


def _pct(value: float | None) -> str:
    return "never" if value is None else f"{100 * value:.1f}%"


def run_eval(args: argparse.Namespace) -> int:
    if _writes_over_its_table(args, "eval"):
        return 2
    table = _load(args.data, args.models)
    started = time.perf_counter()
    try:
        evaluation, spreads = repeated(table, tuple(args.router or ROUTERS), folds=args.folds, seed=args.seed,
                                       repeats=args.repeats)
    except ValueError as exc:
        print(f"orchestrator routing eval: {args.data}: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if args.plot is not None:
        write_plot(evaluation, args.plot)
    if args.json:
        out = as_json(evaluation)
        if args.repeats > 1:
            out["splits"] = splits_json(spreads, args.seed)
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        print(render_evaluation(evaluation))
        if args.repeats > 1:
            print("\n" + render_spreads(spreads, evaluation.folds, args.seed))
        if table.rounded_costs:
            print(f"\n{table.rounded_costs} cost cells held more than a nanodollar's precision and were rounded to it")
        print(f"\n{elapsed:.1f} s" + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0


def run_value(args: argparse.Namespace) -> int:
    """λ for the run-time value policy, learned the way `eval` scores it: on cross-validated predictions."""
    table = _load(args.data, args.models)
    scored = np.flatnonzero(~np.isnan(table.scores).any(axis=1))
    try:
        predicted = cross_validated(table, scored, args.folds, seed=0)
    except ValueError as exc:
        print(f"orchestrator routing value: {args.data}: {exc}", file=sys.stderr)
        return 2
    complete = table.rows(scored)
    if args.cost_share is not None:
        found = lambda_for_cost(predicted, complete.scores, complete.relative_costs(), args.cost_share, LAMBDAS)
        if found is None:
            print(f"orchestrator routing value: {args.data}: no value_lambda tried keeps the cost within "
                  f"{100 * args.cost_share:.4g}% of always-dearest", file=sys.stderr)
            return 1
        target = {"cost_share_target": args.cost_share}
        goal = ("cost target", f"{args.cost_share:.1%}")
    else:
        quality = 0.95 if args.quality is None else args.quality
        found = lambda_for_quality(predicted, complete.scores, complete.relative_costs(), quality, LAMBDAS)
        target = {"quality": quality}
        goal = (f"{quality:.0%} of best", f"{quality * found.best_accuracy:.3f}")
    if args.json:
        print(orjson.dumps({**attrs.asdict(found), **target, "rows": len(scored)}).decode())
        return 0
    print(render_table(
        ("value_lambda", "accuracy", goal[0], "best single tier", "cost vs dearest tier"),
        [(f"{found.value_lambda:.6g}", f"{found.accuracy:.3f}", goal[1], f"{found.best_accuracy:.3f}",
          f"{found.cost_share:.1%}")],
        title=f"{table.source}: {len(scored)} prompts, {len(table.models)} tiers, {args.folds}-fold predictions",
    ))
    print(f"\nin complexity_detection (estimator: learned, a model fitted on this table):\n  value_lambda: "
          f"{found.value_lambda:.6g}")
    return 0


def render_evaluation(evaluation: Evaluation) -> str:
    title = (
        f"two tiers on {evaluation.table.source}: {evaluation.rows} prompts, weak {evaluation.weak}, "
        f"strong {evaluation.strong}; learned router {evaluation.folds}-fold cross-validated"
    )
    rows = []
    for result in evaluation.results:
        t = result.two_tier
        rows.append((
            result.name, f"{t.apgr:.3f}", _pct(t.cpt(0.5)), _pct(t.cpt(0.8)), _pct(t.cost_to_reach(0.95)),
        ))
    parts = [render_table(("router", "APGR", "CPT(50%)", "CPT(80%)", "cost to 95% of strong"), rows, title=title)]
    curve_rows = []
    for result in evaluation.results:
        t = result.two_tier
        n = len(t.accuracy) - 1
        curve_rows.append((result.name, *(f"{100 * t.accuracy[round(s * n)]:.1f}" for s in CURVE_SHARES)))
    parts += ["", render_table(
        ("accuracy % at strong share", *(f"{100 * s:.0f}%" for s in CURVE_SHARES)), curve_rows,
        title="quality-cost curve (two tiers)",
    )]
    multi = [r for r in evaluation.results if r.multi_tier is not None]
    if multi:
        rows = [(r.name, f"{r.multi_tier.apgr:.3f}", _pct(r.multi_tier.cost_to_reach(0.95))) for r in multi]  # type: ignore[union-attr]
        parts += ["", render_table(
            ("router", "APGR", "cost to 95% of strongest"), rows,
            title=f"all {len(evaluation.table.models)} tiers, cheapest first: {', '.join(evaluation.table.models)}",
        )]
    else:
        parts += ["", f"multi-tier: the table has {len(evaluation.table.models)} models, so two tiers is all there is"]
    return "\n".join(parts)


def render_spreads(spreads: tuple[SplitSpread, ...], folds: int, seed: int) -> str:
    repeats = len(spreads[0].apgr)
    rows = [(s.name, f"{s.mean_apgr:.3f}", f"{min(s.apgr):.3f}", f"{max(s.apgr):.3f}", _pct(s.mean_cpt80))
            for s in spreads]
    return render_table(
        ("router", "APGR mean", "min", "max", "CPT(80%) mean"), rows,
        title=f"over {repeats} splits into {folds} folds (seeds {seed}-{seed + repeats - 1}); "
              "the table above is the first split's",
    )


def splits_json(spreads: tuple[SplitSpread, ...], seed: int) -> dict[str, Any]:
    seeds = list(range(seed, seed + len(spreads[0].apgr)))
    return {"seeds": seeds, **{
        s.name: {"apgr": [round(a, 6) for a in s.apgr], "apgr_mean": round(s.mean_apgr, 6), "cpt80": list(s.cpt80),
                 "cpt80_mean": s.mean_cpt80}
        for s in spreads
    }}


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "setup": {
            "table": evaluation.table.source, "rows": evaluation.rows, "folds": evaluation.folds,
            "models": list(evaluation.table.models), "weak": evaluation.weak, "strong": evaluation.strong,
            "costs": "nanodollars per call" if evaluation.table.has_costs else "rank (cheapest 0, strongest 1)",
        }
    }
    for result in evaluation.results:
        t = result.two_tier
        n = len(t.accuracy) - 1
        entry: dict[str, Any] = {
            "apgr": round(t.apgr, 6), "cpt50": t.cpt(0.5), "cpt80": t.cpt(0.8),
            "cost_to_95": t.cost_to_reach(0.95),
            "curve": [[s, round(float(t.accuracy[round(s * n)]), 6)] for s in CURVE_SHARES],
        }
        if result.multi_tier is not None:
            m = result.multi_tier
            entry["multi_tier"] = {
                "apgr": round(m.apgr, 6), "cost_to_95": m.cost_to_reach(0.95),
                "curve": [[round(float(x), 6), round(float(q), 6)] for x, q in zip(m.cost_share, m.quality)],
            }
        out[result.name] = entry
    return out


def run_fit(args: argparse.Namespace) -> int:
    if _writes_over_its_table(args, "fit"):
        return 2
    if args.telemetry is not None:
        table, problems = table_from_telemetry(args.telemetry, args.success_at)
        for problem in problems:
            print(f"skipped: {problem}", file=sys.stderr)
        if args.models:
            table = table.select([m.strip() for m in args.models.split(",")])
    else:
        table = _load(args.data, args.models)
    if args.holdout is not None:
        table = table.rows(np.flatnonzero(~_in_fold(table, args.holdout)))
    if len(table.models) < 2:
        print(f"orchestrator routing fit: {table.source}: a router chooses between models; the table scores "
              f"{len(table.models)} ({', '.join(table.models)})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model = learned.fit(table)
    learned.save(model, args.out)
    predicted = model.predict_batch(learned.table_features(table, model.spec))
    rows = [
        (name, f"{100 * np.nanmean(table.scores[:, j]):.1f}%", f"{100 * predicted[:, j].mean():.1f}%")
        for j, name in enumerate(model.models)
    ]
    print(render_table(("model (cheapest first)", "observed success", "predicted (in sample)"), rows,
                       title=f"fitted on {len(table)} prompts of {table.source} in {time.perf_counter() - started:.1f} s"))
    print(f"\nwrote {args.out}; name it in a config:\n"
          f"  complexity_detection:\n    estimator: learned\n    model_path: {args.out}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    table, problems = table_from_telemetry(args.telemetry, args.success_at)
    write_private(args.out, table_to_jsonl(table))
    observed = (~np.isnan(table.scores)).sum(axis=0)
    print(render_table(("model", "prompts scored", "mean score"),
                       [(m, int(observed[j]), f"{np.nanmean(table.scores[:, j]):.3f}") for j, m in enumerate(table.models)],
                       title=f"{len(table)} prompts from {args.telemetry}"))
    for problem in problems:
        print(f"skipped: {problem}")
    print(f"\nwrote {args.out}")
    return 0


def run_subset(args: argparse.Namespace) -> int:
    if _writes_over_its_table(args, "subset"):
        return 2
    table = read_table(args.data)
    part = table.rows(np.flatnonzero(_in_fold(table, args.fold)))
    write_private(args.out, table_to_jsonl(part))
    print(f"wrote fold {args.fold[0]}/{args.fold[1]}: {len(part)} of {len(table)} prompts to {args.out}")
    return 0


def run_requests(args: argparse.Namespace) -> int:
    if _writes_over_its_table(args, "requests"):
        return 2
    table = read_table(args.data)
    lines = [orjson.dumps({"prompt": p, "request_id": f"row-{i}"}).decode() for i, p in enumerate(table.prompts)]
    write_private(args.out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} requests to {args.out}")
    return 0

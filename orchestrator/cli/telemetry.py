"""Reading the telemetry log: `stats`, `costs`, `replay`, `report`, `telemetry prune`."""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import orjson

from actors.errors import InvalidRequest
from actors.ledger.actor import open_read_only
from actors.money import format_usd
from actors.telemetry.audit import audit
from actors.telemetry.summary import GROUPS, PERIODS, summarize
from orchestrator.config import Config, default_config_path, load_config
from orchestrator.files import write_private
from orchestrator.tables import render_table


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="the run's configuration (default: configs/simulated.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="the run's state directory (default: the config's)")
    parser.add_argument("--telemetry", type=Path, default=None, help="log directory (default: STATE_DIR/telemetry)")


def add_parser(subparsers: Any) -> None:
    stats = subparsers.add_parser("stats", help="totals of the telemetry log")
    _common(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument("--by", choices=("arm",), default=None,
                       help="arm: compare the arms of routing.experiments (requests, cost, feedback with 95%% intervals)")
    stats.set_defaults(func=run_stats)

    costs = subparsers.add_parser("costs", help="cost table by period and by model, tier, task type or provider")
    _common(costs)
    costs.add_argument("--period", choices=PERIODS, default="day", help="one row per period (default day)")
    costs.add_argument("--by", choices=GROUPS, default="tier", help="group by (default tier)")
    costs.add_argument("--json", action="store_true", help="print the rows as JSON")
    costs.add_argument("--csv", type=Path, default=None, help="also write the table to this CSV file")
    costs.set_defaults(func=run_costs)

    replay = subparsers.add_parser(
        "replay",
        help="audit a log against the ledger, or re-route it under another config (what-if)",
        description="`replay LOG`: audit every attempt's cost against the ledger's journal, to the nanodollar "
        "(exit 1 on a mismatch in either direction, an empty or a missing log included). "
        "`replay LOG --what-if OTHER.yaml`: re-route and re-price every recorded request under OTHER and "
        "compare it with the recorded run. The journal is opened read-only.",
    )
    replay.add_argument("log", type=Path, nargs="?", default=None, help="telemetry directory")
    replay.add_argument("--config", type=Path, default=None, help="the configuration the run used (default: simulated)")
    replay.add_argument("--base-config", type=Path, default=None, help=argparse.SUPPRESS)
    replay.add_argument("--what-if", type=Path, default=None, help="re-route the log under this configuration instead")
    replay.add_argument("--state-dir", type=Path, default=None, help="the run's state directory (default: the config's)")
    replay.add_argument("--telemetry", type=Path, default=None, help="log directory (default: STATE_DIR/telemetry)")
    replay.add_argument("--json", action="store_true", help="print the audit as JSON")
    replay.set_defaults(func=run_replay)

    report = subparsers.add_parser("report", help="write a self-contained HTML report with plots")
    _common(report)
    report.add_argument("--out", type=Path, default=Path("report.html"), help="where to write the HTML (default report.html)")
    report.add_argument("--forecast", type=Path, default=None,
                        help="a file of `orchestrator forecast --json` made before the run: forecast against actual per tier")
    report.add_argument("--json", action="store_true", help="print where the report went as JSON")
    report.set_defaults(func=run_report)

    telemetry = subparsers.add_parser("telemetry", help="maintain the telemetry log")
    telemetry_sub = telemetry.add_subparsers(dest="action", required=True)
    prune = telemetry_sub.add_parser("prune", help="delete segments older than a duration (e.g. 90d, 12h)")
    _common(prune)
    prune.add_argument("--older-than", required=True)
    prune.set_defaults(func=run_prune)


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config or default_config_path(), state_dir=args.state_dir)


def _log_dir(args: argparse.Namespace, config: Config) -> Path:
    """The log directory to read; one that does not exist is an error, not an empty log."""
    explicit = getattr(args, "log", None) or args.telemetry
    log_dir = Path(explicit) if explicit is not None else Path(config.engine.telemetry.dir or config.state_dir / "telemetry")
    if not log_dir.is_dir():
        raise InvalidRequest(f"{log_dir}: no telemetry log there (a run writes one under STATE_DIR/telemetry)")
    return log_dir


def run_stats(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.by == "arm":
        return _arm_stats(_log_dir(args, config), args.json)
    summary = summarize(_log_dir(args, config), "all", "tier")
    row = summary.total.row()
    if args.json:
        print(orjson.dumps({**row, "records": summary.records, "shed": summary.shed, "problems": summary.problems}).decode())
        return 0
    pairs = [
        ("log records", summary.records),
        ("requests", row["requests"]),
        ("success rate", f"{100 * row['success_rate']:.1f}%"),  # type: ignore[operator]
        ("fallback rate", f"{100 * row['fallback_rate']:.1f}%"),  # type: ignore[operator]
        ("tokens in / out", f"{row['input_tokens']} / {row['output_tokens']}"),
        ("cost", format_usd(row["cost_nd"], 6)),  # type: ignore[arg-type]
        ("average cost per request", format_usd(row["avg_cost_nd"], 6)),  # type: ignore[arg-type]
        ("cache hits / saved", f"{row['cache_hits']} / {format_usd(row['saved_nd'], 6)}"),  # type: ignore[arg-type]
        ("latency p50 / p95 / p99", f"{row['latency_p50_ms']} / {row['latency_p95_ms']} / {row['latency_p99_ms']} ms"),
        ("most used model", row["most_used_model"]),
        ("most expensive model", row["most_expensive_model"]),
    ]
    if summary.shed:
        pairs.append(("events shed (buffer full)", summary.shed))
    print(render_table(("", "value"), pairs))
    for problem in summary.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


_FORMULA_STARTS = frozenset("=+-@\t\r")


def _inert(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (a task kind any HTTP client names, "=HYPERLINK(...)"),
    quoted so it is shown as text, as OWASP's CSV-injection advice has it; numbers are left as numbers."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def run_costs(args: argparse.Namespace) -> int:
    config = _config(args)
    summary = summarize(_log_dir(args, config), args.period, args.by)
    rows = summary.rows()
    if args.csv is not None:
        buffer = io.StringIO()
        fields = [k for k in rows[0] if k not in ("errors", "failed_attempts")] if rows else ["period"]
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows)
        write_private(args.csv, buffer.getvalue())
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    table = [
        (
            r["period"], r[args.by], r["requests"], r["input_tokens"], r["output_tokens"],
            format_usd(r["cost_nd"], 6), format_usd(r["avg_cost_nd"], 6),  # type: ignore[arg-type]
            r["latency_p50_ms"], r["latency_p99_ms"], f"{100 * r['success_rate']:.0f}%",  # type: ignore[operator]
            r["cache_hits"],
        )
        for r in rows
    ]
    print(render_table(
        ("period", args.by, "requests", "tokens in", "tokens out", "cost", "avg/request", "p50 ms", "p99 ms", "success", "cached"),
        table,
    ))
    total = summary.total.row()
    print(f"\ntotal {format_usd(total['cost_nd'], 6)} over {total['requests']} requests; "  # type: ignore[arg-type]
          f"most used {total['most_used_model']}, most expensive {total['most_expensive_model']}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    config = load_config(args.config or args.base_config or default_config_path(), state_dir=args.state_dir)
    log_dir = _log_dir(args, config)
    if args.what_if is not None:
        from orchestrator.whatif import compare, render_comparison

        other = load_config(args.what_if, state_dir=args.state_dir)
        print(render_comparison(compare(log_dir, config, other)))
        return 0
    ledger = config.engine.ledger
    if ledger.journal_path is None:
        print("orchestrator replay: this configuration keeps no ledger journal to audit against", file=sys.stderr)
        return 2
    core = open_read_only(ledger)
    report = audit(log_dir, core.settled_by_reservation, core.closed)
    if args.json:
        print(orjson.dumps({"requests": report.requests, "results_cost_nd": report.results_cost_nd,
                            "attempts_cost_nd": report.attempts_cost_nd, "ledger_settled_nd": report.ledger_settled_nd,
                            "ok": report.ok, "findings": list(report.findings), "problems": list(report.problems)}).decode())
        return 0 if report.ok else 1
    print(render_table(
        ("", "nanodollars", "dollars"),
        [
            ("results in the log", report.results_cost_nd, format_usd(report.results_cost_nd, 6)),
            ("attempts in the log", report.attempts_cost_nd, format_usd(report.attempts_cost_nd, 6)),
            ("settled in the ledger", report.ledger_settled_nd, format_usd(report.ledger_settled_nd, 6)),
        ],
        title=f"audit of {report.requests} requests in {log_dir}",
    ))
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if report.findings:
        print(f"\nMISMATCH: {len(report.findings)} finding(s)")
        for finding in report.findings[:50]:
            print(f"  {finding}")
        return 1
    print("\nOK: every attempt's cost matches the ledger to the nanodollar")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from orchestrator.report import write_report

    config = _config(args)
    write_report(_log_dir(args, config), config, args.out, args.forecast)
    print(orjson.dumps({"out": str(args.out)}).decode() if args.json else f"wrote {args.out}")
    return 0


def _arm_stats(log_dir: Path, as_json: bool) -> int:
    from orchestrator.arms import TABLE_HEADERS, compare, table_row

    figures = compare(log_dir)
    if as_json:
        print(orjson.dumps([attrs.asdict(f) | {"clearly_worse": f.clearly_worse} for f in figures]).decode())
        return 0

    print(render_table(TABLE_HEADERS, [table_row(f) for f in figures], title=f"A/B arms in {log_dir}"))
    return 0


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def run_prune(args: argparse.Namespace) -> int:
    match = _DURATION.match(args.older_than)
    if not match:
        print(f"orchestrator telemetry prune: --older-than {args.older_than!r}: use a number and s, m, h, d or w (e.g. 90d)", file=sys.stderr)
        return 2
    cutoff = time.time() - int(match.group(1)) * _SECONDS[match.group(2)]
    log_dir = _log_dir(args, _config(args))
    segments = sorted(log_dir.glob("segment-*.log"))
    removed = 0
    for segment in segments[:-1]:
        if segment.stat().st_mtime < cutoff:
            segment.unlink()
            removed += 1
    print(f"removed {removed} of {len(segments)} segments older than {args.older_than}")
    return 0

"""`orchestrator report`: one self-contained HTML page with inline SVG plots, no scripts.

Cost over time per tier, the budget burn-down against the limit (and zoomed to the
spend when it is a small share of the limit), the tier mix, a latency histogram,
failed attempts by reason and, where a GA gave feedback, the mean score by tier and
score per dollar: which tier actually produced the good programs. Line plots have a
time axis and a value axis; every plot has the table of its numbers below it.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import orjson

from actors.errors import ConfigError
from actors.ledger.pacing import PacingPlan
from actors.money import NANODOLLARS_PER_DOLLAR, format_usd
from actors.telemetry.events import FeedbackGiven, ReservationDecided, ResultRecorded
from actors.telemetry.log import LogReader
from orchestrator.arms import TABLE_HEADERS, ArmFigures, table_row
from orchestrator.arms import compare as compare_arms
from orchestrator.config import Config
from orchestrator.files import write_private

_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
W, H, PAD = 640, 240, 40


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts `span` into about `ticks` parts."""
    raw = span / max(ticks, 1) or 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bars(title: str, items: list[tuple[str, float]], unit: str = "", note: str = "") -> str:
    heading = f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "")
    if not items:
        return heading + "<p>No data.</p>"
    top = max(v for _, v in items) or 1.0
    width = (W - 2 * PAD) / len(items)
    parts = [f'<line x1="{PAD}" x2="{W - PAD}" y1="{H - PAD}" y2="{H - PAD}" stroke="#444"/>']
    for i, (label, value) in enumerate(items):
        height = (H - 2 * PAD) * value / top
        x = PAD + i * width
        parts.append(
            f'<rect x="{x + 4:.1f}" y="{H - PAD - height:.1f}" width="{max(width - 8, 1):.1f}" height="{height:.1f}" '
            f'fill="{_COLOURS[i % len(_COLOURS)]}"><title>{html.escape(label)}: {value:g}{unit}</title></rect>'
            f'<text x="{x + width / 2:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{html.escape(label[:14])}</text>'
            f'<text x="{x + width / 2:.1f}" y="{H - PAD - height - 4:.1f}" font-size="10" text-anchor="middle">{value:.4g}{unit}</text>'
        )
    table = _table(("", title.split(" (")[0]), [(label, f"{value:.6g}{unit}") for label, value in items])
    return f'{heading}<svg width="{W}" height="{H}" role="img">{"".join(parts)}</svg>{table}'


def _lines(title: str, series: dict[str, list[tuple[float, float]]], limit: float | None = None, unit: str = "$") -> str:
    """Lines over wall-clock time, with a time axis, a value axis, labels by each line's end and the numbers below."""
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<h2>{html.escape(title)}</h2><p>No data.</p>"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max([p[1] for p in points] + ([limit] if limit else [])) or 1.0
    y_step = _nice_step(top)
    y1 = math.ceil(top / y_step) * y_step
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return PAD + (W - 2 * PAD) * (x - x0) / span

    def py(y: float) -> float:
        return H - PAD - (H - 2 * PAD) * y / y1

    parts = [
        f'<line x1="{PAD}" x2="{W - PAD}" y1="{H - PAD}" y2="{H - PAD}" stroke="#444"/>',
        f'<line x1="{PAD}" x2="{PAD}" y1="{PAD}" y2="{H - PAD}" stroke="#444"/>',
    ]
    tick = 0.0
    while tick <= y1 + 1e-12:
        parts.append(f'<line x1="{PAD - 3}" x2="{W - PAD}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{PAD - 5}" y="{py(tick) + 3:.1f}" font-size="9" text-anchor="end">{tick:.4g}</text>')
        tick += y_step
    started = datetime.fromtimestamp(x0, tz=timezone.utc)
    short = span < 600

    def when(at: float) -> str:
        if span < 1.0:
            return f"+{(at - x0) * 1000:.0f} ms"
        if short:
            return f"+{at - x0:.1f} s"
        return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S")

    for i in range(5):
        at = x0 + span * i / 4
        parts.append(f'<line x1="{px(at):.1f}" x2="{px(at):.1f}" y1="{H - PAD}" y2="{H - PAD + 4}" stroke="#444"/>'
                     f'<text x="{px(at):.1f}" y="{H - PAD + 16}" font-size="9" text-anchor="middle">{when(at)}</text>')
    axis = f"time since {started:%Y-%m-%d %H:%M:%S} UTC" if short else "time (UTC)"
    parts.append(f'<text x="{W / 2:.0f}" y="{H - 4}" font-size="9" text-anchor="middle">{axis}</text>')
    rows = []
    labels = []
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        labels.append((py(pts[-1][1]), f"{html.escape(name)} {unit}{pts[-1][1]:.6f}", colour))
        for x, y in pts[:: max(1, len(pts) // 8)] + [pts[-1]]:
            rows.append((name, when(x), f"{unit}{y:.6f}"))
    placed = -math.inf
    for y, text, colour in sorted(labels):
        placed = max(y + 3, placed + 12)
        parts.append(f'<text x="{W - PAD + 4}" y="{placed:.1f}" font-size="10" fill="{colour}">{text}</text>')
    if limit:
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{py(limit):.1f}" y2="{py(limit):.1f}" stroke="#c00" stroke-dasharray="4"/>'
                     f'<text x="{W - PAD}" y="{py(limit) - 4:.1f}" font-size="10" fill="#c00" text-anchor="end">limit {unit}{limit:g}</text>')
    table = _table(("series", "time" if short else "time (UTC)", "value"), rows)
    return f'<h2>{html.escape(title)}</h2><svg width="{W + 120}" height="{H}" role="img">{"".join(parts)}</svg>{table}'


def _online_section(path: Path) -> str:
    """What the online learner believes, per score band and tier (routing.online), if it ran."""
    if not path.exists():
        return ""
    try:
        snapshot = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return "<h2>Online learner</h2><p>Its saved state could not be read.</p>"
    items = [(f"band {band} {tier}", alpha / (alpha + beta)) for band, tier, alpha, beta in snapshot.get("arms", [])]
    rows = [(f"{band}", tier, f"{alpha / (alpha + beta):.3f}", f"{alpha + beta - 2:.0f}")
            for band, tier, alpha, beta in snapshot.get("arms", [])]
    return (_bars("Online learner: posterior mean success by score band and tier", items)
            + _table(("band", "tier", "mean success", "observations"), rows))


def _planned_and_spent(title: str, rows: list[tuple[str, float, float]], note: str = "", label: str = "generation",
                       planned_name: str = "planned") -> str:
    """A pair of bars per label, planned (outline) and spent (filled), with the numbers below."""
    heading = f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "")
    if not rows:
        return heading + "<p>No data.</p>"
    top = max(max(planned, spent) for _, planned, spent in rows) or 1.0
    width = (W - 2 * PAD) / len(rows)
    parts = [f'<line x1="{PAD}" x2="{W - PAD}" y1="{H - PAD}" y2="{H - PAD}" stroke="#444"/>']
    for i, (name, planned, spent) in enumerate(rows):
        x = PAD + i * width
        for offset, value, style in ((0.1, planned, 'fill="none" stroke="#4e79a7"'), (0.5, spent, 'fill="#f28e2b"')):
            height = (H - 2 * PAD) * value / top
            parts.append(f'<rect x="{x + offset * width:.1f}" y="{H - PAD - height:.1f}" width="{max(width * 0.4, 1):.1f}" '
                         f'height="{height:.1f}" {style}><title>{html.escape(name)}: {value:.6f}</title></rect>')
        parts.append(f'<text x="{x + width / 2:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">'
                     f'{html.escape(name[:14])}</text>')
    parts.append(f'<text x="{PAD}" y="{PAD - 8}" font-size="10" fill="#4e79a7">{planned_name} (outline)</text>'
                 f'<text x="{PAD + 140}" y="{PAD - 8}" font-size="10" fill="#f28e2b">spent (filled)</text>')
    table = _table((label, f"{planned_name} ($)", "spent ($)"),
                   [(name, f"{planned:.9f}", f"{spent:.9f}") for name, planned, spent in rows])
    return f'{heading}<svg width="{W}" height="{H}" role="img">{"".join(parts)}</svg>{table}'


def _pacing_section(plan: PacingPlan, generation_of: dict[str, tuple[int, str]], answered: list[ResultRecorded]) -> str:
    """Per generation: its allotment plus what earlier ones left (planned), and what it spent; the reserve apart."""
    spent: Counter[int] = Counter()
    escalations = 0
    for event in answered:
        generation, purpose = generation_of.get(event.request_id, (-1, ""))
        cost = event.result.cost_nd  # type: ignore[union-attr]
        if purpose == "escalation":
            escalations += cost
        elif generation >= 0:
            spent[generation] += cost
    rows = []
    before = 0
    for generation in range(max([plan.generations - 1, *spent]) + 1):
        planned = plan.allotment(generation) + plan.carried_in(generation, before)
        rows.append((str(generation), planned / NANODOLLARS_PER_DOLLAR, spent[generation] / NANODOLLARS_PER_DOLLAR))
        before += spent[generation]
    note = (f"Run {plan.run}: planned is a generation's allotment"
            f"{' plus what earlier generations left' if plan.carry_over else ''}. Escalations spent "
            f"{format_usd(escalations, 6)} of the {format_usd(plan.reserve_nd, 6)} reserve.")
    return _planned_and_spent("Pacing: planned against spent per generation ($)", rows, note)


def _forecast_section(planned: Mapping[str, object], where: str, answered: list[ResultRecorded]) -> str:
    """`orchestrator forecast --json`'s expectation per tier against what the log's answers cost there.

    The forecast names the tier each request would try first; fallbacks and budget
    downgrades move some elsewhere, which is what the comparison shows. Only answers
    logged after the forecast was made count: the run it planned, not the history it
    learned from.
    """
    try:
        tiers = {str(t["tier"]): (int(t["requests"]), int(t["expected_nd"]), int(t["worst_nd"]))  # type: ignore[index]
                 for t in planned["tiers"]}  # type: ignore[attr-defined]
        made_at = float(planned.get("made_at", 0.0))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not a forecast written by `orchestrator forecast --json` ({exc!r})") from None
    answered = [event for event in answered if event.at >= made_at]
    actual_cost: Counter[str] = Counter()
    actual_requests: Counter[str] = Counter()
    for event in answered:
        result = event.result
        assert result is not None
        actual_cost[result.tier] += result.cost_nd
        actual_requests[result.tier] += 1
    names = sorted(set(tiers) | set(actual_cost))
    rows = []
    for name in names:
        count, expected, worst = tiers.get(name, (0, 0, 0))
        spent = actual_cost[name]
        rows.append((name, str(count), format_usd(expected, 6), format_usd(worst, 6), str(actual_requests[name]),
                     format_usd(spent, 6), f"{spent / expected:.2f}" if expected else "-"))
    expected_total = sum(e for _, e, _ in tiers.values())
    worst_total = sum(w for _, _, w in tiers.values())
    spent_total = sum(actual_cost.values())
    rows.append(("total", str(sum(c for c, _, _ in tiers.values())), format_usd(expected_total, 6),
                 format_usd(worst_total, 6), str(len(answered)), format_usd(spent_total, 6),
                 f"{spent_total / expected_total:.2f}" if expected_total else "-"))
    plot = _planned_and_spent(
        "Forecast against actual per tier ($)",
        [(name, tiers.get(name, (0, 0, 0))[1] / NANODOLLARS_PER_DOLLAR, actual_cost[name] / NANODOLLARS_PER_DOLLAR)
         for name in names],
        note=f"Forecast {where}: each request at the tier it would try first; fallbacks and budget downgrades "
             "move answers to other tiers. The worst case is what the ledger reserves.",
        label="tier", planned_name="expected",
    )
    return plot + _table(("tier", "forecast requests", "expected", "worst case", "answered", "actual", "actual/expected"),
                         rows)


def _arms_section(arms: list[ArmFigures]) -> str:
    """The A/B arms: mean feedback score with its 95% interval, and each arm against the best (orchestrator.arms)."""
    plot = _bars("A/B arms: mean feedback score", [(f.arm, f.mean_score or 0.0) for f in arms],
                 note="An arm whose interval against the best lies below zero is clearly worse (docs/ROUTING.md).")
    return plot + _table(TABLE_HEADERS, [table_row(f) for f in arms])


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def write_report(log_dir: str | Path, config: Config, out: str | Path, planned: Path | None = None) -> None:
    """The report of a telemetry log; with `planned` (a `forecast --json` file), forecast against actual too."""
    forecast_of_run: Mapping[str, object] | None = None
    if planned is not None:
        try:
            forecast_of_run = orjson.loads(planned.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{planned}: cannot read the forecast ({exc})") from None
        if not isinstance(forecast_of_run, Mapping):
            raise ConfigError(f"{planned}: not a forecast written by `orchestrator forecast --json`")
    results: list[ResultRecorded] = []
    scores: dict[str, float] = {}
    reader = LogReader(Path(log_dir))
    generation_of: dict[str, tuple[int, str]] = {}
    for event in reader.events_of(ResultRecorded, FeedbackGiven, ReservationDecided):
        if isinstance(event, ReservationDecided):
            if event.granted and (event.generation >= 0 or event.purpose):
                generation_of.setdefault(event.request_id, (event.generation, event.purpose))
        elif isinstance(event, ResultRecorded):
            results.append(event)
        else:
            scores[event.request_id] = event.score
    answered = [e for e in results if e.result is not None]
    per_tier: dict[str, list[tuple[float, float]]] = defaultdict(list)
    running: Counter[str] = Counter()
    burn: list[tuple[float, float]] = []
    total = 0
    for event in sorted(answered, key=lambda e: e.at):
        result = event.result
        assert result is not None
        running[result.tier] += result.cost_nd
        total += result.cost_nd
        per_tier[result.tier].append((event.at, running[result.tier] / NANODOLLARS_PER_DOLLAR))
        burn.append((event.at, total / NANODOLLARS_PER_DOLLAR))
    mix = Counter(e.result.tier for e in answered)  # type: ignore[union-attr]
    latencies = [e.result.latency_s * 1000 for e in answered]  # type: ignore[union-attr]
    buckets: Counter[int] = Counter()
    step = _nice_step(max(latencies) if latencies else 1.0, 10)
    for value in latencies:
        buckets[int(value // step)] += 1
    failures = Counter(a.outcome for e in answered for a in e.result.attempts if a.outcome != "ok")  # type: ignore[union-attr]
    failures.update(e.error_code for e in results if e.result is None)
    tier_scores: dict[str, list[float]] = defaultdict(list)
    tier_cost: Counter[str] = Counter()
    for event in answered:
        if event.request_id in scores:
            tier_scores[event.result.tier].append(scores[event.request_id])  # type: ignore[union-attr]
            tier_cost[event.result.tier] += event.result.cost_nd  # type: ignore[union-attr]
    limit = config.engine.ledger.limit_nd / NANODOLLARS_PER_DOLLAR
    spent = total / NANODOLLARS_PER_DOLLAR
    sections = [
        _lines("Cost over time per tier (cumulative $)", per_tier),
        _lines("Budget burn-down: spent against the limit ($)", {"spent": burn}, limit),
    ]
    if spent < 0.1 * limit:
        sections.append(_lines(f"Budget burn-down, zoomed: {100 * spent / limit:.2g}% of the limit spent ($)", {"spent": burn}))
    failed_requests = sum(1 for e in results if e.result is None)
    failure_note = (
        f"Failed attempts, retried or fallen back; {failed_requests} of {len(results)} requests failed in the end."
        if failures else ""
    )
    if failures and not failed_requests:
        failure_note = "Every request succeeded; these are attempts that failed and were retried or fallen back."
    sections += [
        _bars("Tier mix (requests)", sorted((k, float(v)) for k, v in mix.items())),
        _bars("Latency histogram (requests per latency band, ms)",
              [(f"{_fmt(k * step)}-{_fmt((k + 1) * step)}", float(v)) for k, v in sorted(buckets.items())]),
        _bars("Failures by reason (attempts)", sorted((k, float(v)) for k, v in failures.items()), note=failure_note),
    ]
    if tier_scores:
        sections.append(_bars("Mean feedback score by tier", sorted((t, sum(v) / len(v)) for t, v in tier_scores.items())))
        sections.append(_bars(
            "Score per dollar by tier (sum of scores / $ spent)",
            sorted((t, sum(v) / max(tier_cost[t] / NANODOLLARS_PER_DOLLAR, 1e-9)) for t, v in tier_scores.items()),
        ))
    arms = [f for f in compare_arms(log_dir) if f.arm]
    if arms:
        sections.append(_arms_section(arms))
    if forecast_of_run is not None:
        sections.append(_forecast_section(forecast_of_run, str(planned), answered))
    if config.engine.ledger.pacing is not None:
        sections.append(_pacing_section(config.engine.ledger.pacing, generation_of, answered))
    sections.append(_online_section(config.state_dir / "routing" / "online.json"))
    head = (
        f"<p>{len(results)} requests, {len(answered)} answered, total {format_usd(total, 6)} of a "
        f"{format_usd(config.engine.ledger.limit_nd, 2)} budget; log {html.escape(str(log_dir))}.</p>"
    )
    if reader.problems:
        head += "<p>Log problems: " + "; ".join(html.escape(p.what) for p in reader.problems) + "</p>"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Orchestrator report</title>"
        "<style>body{font-family:sans-serif;max-width:780px;margin:2em auto}h2{font-size:1.05em;margin-top:2em}"
        "table{border-collapse:collapse;font-size:0.8em;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
        f"</head><body><h1>Orchestrator report</h1>{head}{''.join(sections)}</body></html>"
    )
    write_private(out, page)

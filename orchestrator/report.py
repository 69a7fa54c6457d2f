"""`orchestrator report`: one self-contained HTML page with inline SVG plots, no scripts.

Cost over time per tier, the budget burn-down against the limit, the tier mix, a
latency histogram, failed attempts by reason and, where a GA gave feedback, the mean
score by tier and score per dollar: which tier actually produced the good programs.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from pathlib import Path

from actors.telemetry.codec import CODEC
from actors.money import NANODOLLARS_PER_DOLLAR, format_usd
from actors.telemetry.events import FeedbackGiven, ResultRecorded
from actors.telemetry.log import LogReader
from orchestrator.config import Config
from orchestrator.files import write_private

_TAGS = frozenset(CODEC.tag_of(c) for c in (ResultRecorded, FeedbackGiven))
_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
W, H, PAD = 640, 240, 40


def _bars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    if not items:
        return f"<h2>{html.escape(title)}</h2><p>No data.</p>"
    top = max(v for _, v in items) or 1.0
    width = (W - 2 * PAD) / len(items)
    parts = []
    for i, (label, value) in enumerate(items):
        height = (H - 2 * PAD) * value / top
        x = PAD + i * width
        parts.append(
            f'<rect x="{x + 4:.1f}" y="{H - PAD - height:.1f}" width="{max(width - 8, 1):.1f}" height="{height:.1f}" '
            f'fill="{_COLOURS[i % len(_COLOURS)]}"><title>{html.escape(label)}: {value:g}{unit}</title></rect>'
            f'<text x="{x + width / 2:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{html.escape(label[:14])}</text>'
            f'<text x="{x + width / 2:.1f}" y="{H - PAD - height - 4:.1f}" font-size="10" text-anchor="middle">{value:.4g}{unit}</text>'
        )
    return f'<h2>{html.escape(title)}</h2><svg width="{W}" height="{H}" role="img">{"".join(parts)}</svg>'


def _lines(title: str, series: dict[str, list[tuple[float, float]]], limit: float | None = None) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<h2>{html.escape(title)}</h2><p>No data.</p>"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y1 = max([p[1] for p in points] + ([limit] if limit else [])) or 1.0
    span = (x1 - x0) or 1.0

    def xy(x: float, y: float) -> str:
        return f"{PAD + (W - 2 * PAD) * (x - x0) / span:.1f},{H - PAD - (H - 2 * PAD) * y / y1:.1f}"

    parts = []
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(xy(x, y) for x, y in pts)}"/>')
        parts.append(f'<text x="{W - PAD + 2}" y="{PAD + 12 * i}" font-size="10" fill="{colour}">{html.escape(name)}</text>')
    if limit:
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{xy(x0, limit).split(",")[1]}" y2="{xy(x0, limit).split(",")[1]}" stroke="#c00" stroke-dasharray="4"/>')
        parts.append(f'<text x="{PAD + 4}" y="{float(xy(x0, limit).split(",")[1]) - 4:.1f}" font-size="10" fill="#c00">limit ${limit:g}</text>')
    parts.append(f'<text x="{PAD}" y="{PAD - 8}" font-size="10">max {y1:.4g}</text>')
    return f'<h2>{html.escape(title)}</h2><svg width="{W + 80}" height="{H}" role="img">{"".join(parts)}</svg>'


def write_report(log_dir: str | Path, config: Config, out: str | Path) -> None:
    results: list[ResultRecorded] = []
    scores: dict[str, float] = {}
    reader = LogReader(Path(log_dir))
    for payload in reader.payloads():
        if CODEC.peek_tag(payload) in _TAGS:
            event = CODEC.decode(payload)
            if isinstance(event, ResultRecorded):
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
    step = max(1.0, (max(latencies) if latencies else 1.0) / 12)
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
    sections = [
        _lines("Cost over time per tier (cumulative $)", per_tier),
        _lines("Budget burn-down: spent against the limit ($)", {"spent": burn}, limit),
        _bars("Tier mix (requests)", sorted((k, float(v)) for k, v in mix.items())),
        _bars("Latency histogram (ms)", [(f"{k * step:.0f}-{(k + 1) * step:.0f}", float(v)) for k, v in sorted(buckets.items())]),
        _bars("Failures by reason", sorted((k, float(v)) for k, v in failures.items())),
    ]
    if tier_scores:
        sections.append(_bars("Mean feedback score by tier", sorted((t, sum(v) / len(v)) for t, v in tier_scores.items())))
        sections.append(_bars(
            "Score per dollar by tier (sum of scores / $ spent)",
            sorted((t, sum(v) / max(tier_cost[t] / NANODOLLARS_PER_DOLLAR, 1e-9)) for t, v in tier_scores.items()),
        ))
    head = (
        f"<p>{len(results)} requests, {len(answered)} answered, total {format_usd(total, 6)} of a "
        f"{format_usd(config.engine.ledger.limit_nd, 2)} budget; log {html.escape(str(log_dir))}.</p>"
    )
    if reader.problems:
        head += "<p>Log problems: " + "; ".join(html.escape(p.what) for p in reader.problems) + "</p>"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Orchestrator report</title>"
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}h2{font-size:1.05em;margin-top:2em}</style>"
        f"</head><body><h1>Orchestrator report</h1>{head}{''.join(sections)}</body></html>"
    )
    write_private(out, page)

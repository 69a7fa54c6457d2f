"""The routing evaluation as one self-contained HTML page with inline SVG, no scripts.

The same look as `orchestrator report`: the two-tier curve (share of the weak→strong gap
recovered against the share of strong calls) for every router, and, for tables with
three or more models, the quality–cost curve of each router's family of policies.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from orchestrator.files import write_private
from orchestrator.lab.evaluation import Evaluation

_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
W, H, PAD = 640, 280, 40


def _plot(title: str, series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str) -> str:
    ys = [y for points in series.values() for _, y in points]
    y0, y1 = min(0.0, *ys), max(1.0, *ys)

    def xy(x: float, y: float) -> str:
        return f"{PAD + (W - 2 * PAD) * x:.1f},{H - PAD - (H - 2 * PAD) * (y - y0) / (y1 - y0):.1f}"

    parts = [
        f'<line x1="{PAD}" x2="{W - PAD}" y1="{xy(0, 0).split(",")[1]}" y2="{xy(0, 0).split(",")[1]}" stroke="#999"/>',
        f'<line x1="{PAD}" x2="{W - PAD}" y1="{xy(0, 1).split(",")[1]}" y2="{xy(0, 1).split(",")[1]}" stroke="#999" stroke-dasharray="4"/>',
        f'<text x="{W / 2:.0f}" y="{H - 8}" font-size="11" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="4" y="{PAD - 10}" font-size="11">{html.escape(y_label)} (max {y1:.3g})</text>',
    ]
    for i, (name, points) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(xy(x, y) for x, y in points)}"><title>{html.escape(name)}</title></polyline>')
        parts.append(f'<text x="{W - PAD + 4}" y="{PAD + 14 * i}" font-size="11" fill="{colour}">{html.escape(name)}</text>')
    return f'<h2>{html.escape(title)}</h2><svg width="{W + 110}" height="{H}" role="img">{"".join(parts)}</svg>'


def write_plot(evaluation: Evaluation, out: str | Path) -> None:
    two: dict[str, list[tuple[float, float]]] = {}
    multi: dict[str, list[tuple[float, float]]] = {}
    for result in evaluation.results:
        curve = result.two_tier
        steps = np.linspace(0, len(curve.accuracy) - 1, min(len(curve.accuracy), 201)).round().astype(int)
        share = steps / max(1, len(curve.accuracy) - 1)
        pgr = curve.pgr
        two[f"{result.name} ({curve.apgr:.3f})"] = [(float(s), float(pgr[k])) for s, k in zip(share, steps)]
        if result.multi_tier is not None:
            m = result.multi_tier
            multi[f"{result.name} ({m.apgr:.3f})"] = [(float(x), float(y)) for x, y in zip(np.clip(m.cost_share, 0, 1), m.pgr)]
    sections = [_plot(
        f"Two tiers: {evaluation.weak} → {evaluation.strong} (APGR in brackets)", two,
        "share of calls to the strong model", "share of the gap recovered",
    )]
    if multi:
        sections.append(_plot(
            f"All {len(evaluation.table.models)} models: quality against cost", multi,
            "cost, from always-cheapest (0) to always-strongest (1)", "share of the gap recovered",
        ))
    head = (
        f"<p>{html.escape(evaluation.table.source)}: {evaluation.rows} prompts scored, models cheapest first: "
        f"{html.escape(', '.join(evaluation.table.models))}; learned router {evaluation.folds}-fold cross-validated.</p>"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Routing evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:860px;margin:2em auto}h2{font-size:1.05em;margin-top:2em}</style>"
        f"</head><body><h1>Routing evaluation</h1>{head}{''.join(sections)}</body></html>"
    )
    write_private(out, page)

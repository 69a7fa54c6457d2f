"""What-if replay, the A/B framework: the recorded requests, routed and priced by another config.

Each recorded request is re-estimated and re-routed under both configurations with
no I/O (every provider assumed available, the budget untouched). It is priced with
the token counts the run recorded for it: the prompt is the same text, and the
output length of the recorded answer stands in for the other model's (the documented
estimate; tokenizers differ by a few percent). Cache hits are priced as if they had
been misses, so both columns compare the routing alone. Where callers gave feedback,
the expected score of a configuration is the mean recorded score of the tier it
routes each request to (requests on a tier with no feedback are left out).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import attrs

from actors.errors import OrchestratorError
from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.messages import Request
from actors.money import format_usd, token_cost_nd
from actors.policy.estimators import build_estimator
from actors.policy.prompts import request_messages
from actors.policy.value import prices_by_level
from actors.router.selection import RoutingContext, select
from actors.telemetry.events import FeedbackGiven, RequestReceived, ResultRecorded
from actors.telemetry.log import LogReader
from orchestrator.config import Config
from orchestrator.tables import render_table


@attrs.frozen
class Side:
    name: str
    cost_nd: int
    tiers: dict[str, int]
    expected_score: float | None
    unroutable: int


@attrs.frozen
class Comparison:
    requests: int
    recorded: Side
    alternative: Side


def _route(config: Config, request: Request) -> tuple[str, str]:
    settings = config.engine
    providers = {p.name: p for p in settings.providers}
    estimator = build_estimator(settings.router.estimator, prices_by_level(settings.router, providers))
    messages = request_messages(request)
    context = RoutingContext(
        available=frozenset(providers),
        remaining_share=1.0,
        providers=providers,
        prompt_tokens=prompt_token_upper_bound(messages),
        prompt_tokens_estimate=prompt_token_estimate(messages),
    )
    selection = select(estimator.estimate(request), request, settings.router, context)
    return selection.tier, selection.provider


def compare(log_dir: str | Path, base: Config, other: Config) -> Comparison:
    requests: dict[str, Request] = {}
    outcomes: dict[str, ResultRecorded] = {}
    scores: dict[str, float] = {}
    for event in LogReader(Path(log_dir)).events_of(RequestReceived, ResultRecorded, FeedbackGiven):
        if isinstance(event, RequestReceived):
            requests[event.request.request_id] = event.request
        elif isinstance(event, ResultRecorded):
            outcomes[event.request_id] = event
        else:
            scores[event.request_id] = event.score
    answered = [(requests[rid], o.result) for rid, o in outcomes.items() if o.result is not None and rid in requests]
    tier_scores: dict[str, list[float]] = defaultdict(list)
    for request, result in answered:
        if request.request_id in scores:
            tier_scores[result.tier].append(scores[request.request_id])  # type: ignore[union-attr]
    mean_score = {tier: sum(v) / len(v) for tier, v in tier_scores.items()}
    sides = []
    for name, config in (("recorded config", base), ("what-if config", other)):
        providers = {p.name: p for p in config.engine.providers}
        cost = 0
        tiers: Counter[str] = Counter()
        expected: list[float] = []
        unroutable = 0
        for request, result in answered:
            try:
                tier, provider_name = _route(config, request)
            except OrchestratorError:
                unroutable += 1
                continue
            provider = providers[provider_name]
            cost += token_cost_nd(result.input_tokens, provider.input_price_nd_per_mtok)  # type: ignore[union-attr]
            cost += token_cost_nd(result.output_tokens, provider.output_price_nd_per_mtok)  # type: ignore[union-attr]
            tiers[tier] += 1
            if tier in mean_score:
                expected.append(mean_score[tier])
        sides.append(Side(name, cost, dict(tiers), sum(expected) / len(expected) if expected else None, unroutable))
    return Comparison(len(answered), sides[0], sides[1])


def render_comparison(comparison: Comparison) -> str:
    tiers = sorted(set(comparison.recorded.tiers) | set(comparison.alternative.tiers))
    rows = [("cost", format_usd(comparison.recorded.cost_nd, 6), format_usd(comparison.alternative.cost_nd, 6))]
    for tier in tiers:
        rows.append((f"requests on {tier}", comparison.recorded.tiers.get(tier, 0), comparison.alternative.tiers.get(tier, 0)))
    rows.append((
        "expected score",
        "-" if comparison.recorded.expected_score is None else f"{comparison.recorded.expected_score:.3f}",
        "-" if comparison.alternative.expected_score is None else f"{comparison.alternative.expected_score:.3f}",
    ))
    if comparison.recorded.unroutable or comparison.alternative.unroutable:
        rows.append(("unroutable", comparison.recorded.unroutable, comparison.alternative.unroutable))
    ratio = comparison.alternative.cost_nd / comparison.recorded.cost_nd if comparison.recorded.cost_nd else float("nan")
    return render_table(
        ("", comparison.recorded.name, comparison.alternative.name), rows,
        title=f"what-if over {comparison.requests} recorded requests (tokens as recorded)",
    ) + f"\n\nthe what-if config costs {ratio:.2f}x the recorded one"

"""What a workload will cost before any money is spent: expected and worst case, per tier.

Every request is routed by the router's own estimator and selection (no call, no
money) to the tier and model it would try first. Its worst case is exactly what the
ledger would reserve for it. Its expected cost prices the prompt at the router's
token estimate scaled by what the model's provider actually counted for past prompts
of that kind (the estimate is generous: 36% above the simulator's count on the ARC
demo), and the answer at the mean output length the telemetry log recorded for that
model and kind of request, capped by `max_tokens`. A model the log never saw on that
kind borrows the other models' figures for it; where no model answered that kind,
the documented prior: the estimate as it is, and half of `max_tokens`
(`PRIOR_OUTPUT_SHARE_PPM`).

The budget-downgrade share is how many requests, taken in order, would find the
expected spending past the remaining budget: with `downgrade_on_budget` they would
move to a cheaper tier (or be refused without it).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import attrs

from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.messages import ChatMessage, Request
from actors.money import token_cost_nd
from actors.policy.estimators import build_estimator
from actors.policy.prompts import request_messages
from actors.policy.value import prices_by_level
from actors.providers.settings import ProviderSettings
from actors.router.selection import RoutingContext, select
from actors.settings import EngineSettings
from actors.telemetry.events import RequestReceived, ResultRecorded
from actors.telemetry.log import LogReader

PRIOR_OUTPUT_SHARE_PPM = 500_000
"""Without history, an answer is expected to use half of its `max_tokens` (parts per million)."""


@attrs.frozen
class Routed:
    """One request as the router would first try it."""

    kind: str
    tier: str
    provider: ProviderSettings
    prompt_tokens: int
    max_tokens: int
    worst_nd: int
    count: int = 1
    """How many requests alike this one stands for (a GA plan's samples of one generation)."""

    @classmethod
    def of(cls, engine: EngineSettings, request: Request, messages: tuple[ChatMessage, ...], tier: str,
           provider: str, worst_nd: int, count: int = 1) -> Routed:
        """`worst_nd` is the router's own: what the ledger would reserve for this first try."""
        settings = next(p for p in engine.providers if p.name == provider)
        max_tokens = request.max_tokens or engine.router.tier_named[tier].max_tokens
        return cls(request.kind, tier, settings, prompt_token_estimate(messages), max_tokens, worst_nd, count)


@attrs.frozen
class TierForecast:
    tier: str
    requests: int
    expected_nd: int
    worst_nd: int
    from_history: int
    """Requests whose output length came from the telemetry history (the rest from the prior)."""


@attrs.frozen
class Forecast:
    tiers: tuple[TierForecast, ...]
    expected_nd: int
    worst_nd: int
    limit_nd: int
    remaining_nd: int
    downgrade_share: float
    made_at: float = attrs.field(factory=time.time)
    """When it was made: `orchestrator report --forecast` compares it with the answers logged after."""

    @property
    def covered(self) -> bool:
        return self.worst_nd <= self.remaining_nd

    def as_dict(self) -> dict[str, object]:
        return {
            "tiers": [attrs.asdict(t) for t in self.tiers], "expected_nd": self.expected_nd,
            "worst_nd": self.worst_nd, "limit_nd": self.limit_nd, "remaining_nd": self.remaining_nd,
            "worst_case_covered": self.covered, "expected_covered": self.expected_nd <= self.remaining_nd,
            "downgrade_share": round(self.downgrade_share, 4), "made_at": self.made_at,
        }


@attrs.frozen
class Seen:
    """What one (model, kind) was seen to use: answers, output tokens, input tokens and their estimates."""

    answers: int
    output_tokens: int
    input_tokens: int
    input_estimate: int


class TokenHistory:
    """Token use per (model, kind of request), from the answers a telemetry log recorded."""

    def __init__(self, seen: dict[tuple[str, str], Seen] | None = None) -> None:
        self._seen = seen or {}
        pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for (_, kind), one in self._seen.items():
            sums = pooled[kind]
            for index, value in enumerate((one.answers, one.output_tokens, one.input_tokens, one.input_estimate)):
                sums[index] += value
        self._by_kind = {kind: Seen(*values) for kind, values in pooled.items()}

    @classmethod
    def from_log(cls, directory: str | Path) -> TokenHistory:
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        path = Path(directory)
        if not path.is_dir():
            return cls()
        estimates: dict[str, int] = {}
        for event in LogReader(path).events_of(RequestReceived, ResultRecorded):
            if isinstance(event, RequestReceived):
                request = event.request
                messages = request_messages(request)
                estimates[request.request_id] = prompt_token_estimate(messages)
                continue
            result = event.result
            estimate = estimates.pop(event.request_id, 0)
            if result is None or result.cached or result.replayed or not estimate:
                continue
            entry = sums[(result.model, event.task_kind)]
            entry[0] += 1
            entry[1] += result.output_tokens
            entry[2] += result.input_tokens
            entry[3] += estimate
        return cls({key: Seen(*values) for key, values in sums.items()})

    def tokens(self, model: str, kind: str, prompt_estimate: int, max_tokens: int) -> tuple[int, int, bool]:
        """Expected input and output tokens, and whether history (not the prior) gave them.

        A model never seen on this kind of request borrows what the other models used on
        it (an answer's length follows the task more than the model): the prior only
        when no model has answered this kind.
        """
        seen = self._seen.get((model, kind)) or self._by_kind.get(kind)
        if seen is None:
            return prompt_estimate, max_tokens * PRIOR_OUTPUT_SHARE_PPM // 1_000_000, False
        expected_input = -(-prompt_estimate * seen.input_tokens // seen.input_estimate)
        return expected_input, min(max_tokens, -(-seen.output_tokens // seen.answers)), True


def route_offline(engine: EngineSettings, requests: Iterable[Request],
                  counts: Iterable[int] | None = None) -> list[Routed]:
    """Each request through the router's estimator and selection, every provider taken as available;
    `counts`, when given, says how many requests alike each one stands for."""
    providers = {p.name: p for p in engine.providers}
    estimator = build_estimator(engine.router.estimator, prices_by_level(engine.router, providers))
    routed = []
    for request, count in zip(requests, itertools.repeat(1) if counts is None else counts):
        messages = request_messages(request)
        context = RoutingContext(
            available=frozenset(providers), remaining_share=1.0, providers=providers,
            prompt_tokens=prompt_token_upper_bound(messages), prompt_tokens_estimate=prompt_token_estimate(messages),
            margin_ppm=engine.ledger.safety_margin_ppm,
        )
        selection = select(estimator.estimate(request), request, engine.router, context)
        routed.append(Routed.of(engine, request, messages, selection.tier, selection.provider,
                                selection.estimated_cost_nd, count))
    return routed


def forecast(routed: Iterable[Routed], history: TokenHistory, *, limit_nd: int, remaining_nd: int) -> Forecast:
    per_tier: dict[str, list[int]] = {}
    expected_total = worst_total = moved = count = 0
    for one in routed:
        prompt, output, known = history.tokens(one.provider.model, one.kind, one.prompt_tokens, one.max_tokens)
        expected = (token_cost_nd(prompt, one.provider.input_price_nd_per_mtok)
                    + token_cost_nd(output, one.provider.output_price_nd_per_mtok))
        moved += _past(remaining_nd - expected_total, expected, one.count)
        expected_total += expected * one.count
        worst_total += one.worst_nd * one.count
        count += one.count
        row = per_tier.setdefault(one.tier, [0, 0, 0, 0])
        row[0] += one.count
        row[1] += expected * one.count
        row[2] += one.worst_nd * one.count
        row[3] += known * one.count
    tiers = tuple(TierForecast(tier, *row) for tier, row in sorted(per_tier.items()))
    return Forecast(tiers, expected_total, worst_total, limit_nd, remaining_nd, moved / count if count else 0.0)


def _past(room: int, each: int, count: int) -> int:
    """Of `count` requests of `each` expected nanodollars taken in order with `room` left, how many find the
    expected spending past the remaining budget (the j-th does when j * each > room)."""
    if each <= 0:
        return count if room < 0 else 0
    within = room // each if room >= 0 else -1
    return count - min(max(within, 0), count)

"""From an estimate to a tier, a provider and an ordered fallback chain, with no I/O.

The level picks the tier whose `level` it is (a level with no tier of its own, like
the coding router's "critical", goes to the highest tier below it). Then, each on
by configuration and each named in the reasons:

1. explicit override: `Request.tier` or `Request.model` pins the start;
2. the escalation-only tier (the story's "breakthrough" GPT-5) is reached only by
   stagnation escalation or an override: an estimate that lands there starts one
   tier below;
3. stagnation escalation: a request whose GA has stagnated for at least
   `stagnation_threshold` generations moves up one tier;
4. budget pressure: with less than `budget_pressure_share` of the budget left, move
   down one paid tier;
5. availability: providers with an open circuit or disabled are left out;
6. context-length upgrade: providers whose window cannot hold the prompt plus
   max_tokens are left out, so the chain starts at the next one that fits.

The fallback chain orders the other candidates by strategy: best_available (the
start tier's other providers, then cheaper tiers, then pricier ones, the free local
tier last), downgrade, upgrade, retry (the start tier only, then local), round_robin
(the start tier's providers rotated per request, then as best_available).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping

import attrs

from actors.errors import InvalidRequest, StrategyUnavailable, UnknownModel
from actors.ledger.pricing import worst_case_nd
from actors.messages import Estimate, Request
from actors.policy.settings import RouterSettings, TierSettings
from actors.providers.settings import ProviderSettings


@attrs.frozen
class RoutingContext:
    available: frozenset[str]
    remaining_share: float
    providers: Mapping[str, ProviderSettings]
    prompt_tokens: int
    prompt_tokens_estimate: int
    margin_ppm: int = 0
    retry_after: Callable[[Iterable[str]], float | None] | None = None
    """Seconds until the first of some providers may take work again (`Circuits.retry_after`)."""


@attrs.frozen
class Selection:
    tier: str
    provider: str
    alternatives: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]
    estimated_cost_nd: int


def tier_for_level(level: str, tiers: tuple[TierSettings, ...], levels: tuple[str, ...]) -> int:
    """Index (among paid tiers) of the tier for `level`, or the highest one below it."""
    paid = [t for t in tiers if not t.local]
    for index, tier in enumerate(paid):
        if tier.level == level:
            return index
    rank = levels.index(level) if level in levels else len(levels)
    best = 0
    for index, tier in enumerate(paid):
        if tier.level in levels and levels.index(tier.level) < rank:
            best = index
    return best


def select(estimate: Estimate, request: Request, settings: RouterSettings, context: RoutingContext) -> Selection:
    policy = settings.selection
    paid, local = settings.paid, settings.local
    reasons: list[str] = []
    pinned_provider: str | None = None
    if request.tier is not None:
        matches = [i for i, t in enumerate(paid) if t.name == request.tier]
        if not matches and not any(t.name == request.tier for t in local):
            raise UnknownModel(f"request {request.request_id}: no tier named {request.tier!r}")
        start = matches[0] if matches else None
        reasons.append(f"override: tier {request.tier}")
    elif request.model is not None:
        found = [
            (i, name) for i, t in enumerate(paid) for name in t.providers
            if context.providers[name].model == request.model or name == request.model
        ]
        local_found = [name for t in local for name in t.providers
                       if context.providers[name].model == request.model or name == request.model]
        if not found and not local_found:
            raise UnknownModel(f"request {request.request_id}: no provider serves model {request.model!r}")
        start = found[0][0] if found else None
        pinned_provider = found[0][1] if found else local_found[0]
        reasons.append(f"override: model {request.model}")
    else:
        start = tier_for_level(estimate.level, settings.tiers, settings.levels)
        if paid[start].escalation_only and start > 0:
            start -= 1
            reasons.append(f"{paid[start + 1].name} only on stagnation: start at {paid[start].name}")
        if request.stagnation >= policy.stagnation_threshold and start + 1 < len(paid):
            start += 1
            reasons.append(f"stagnated {request.stagnation} generations: escalate to {paid[start].name}")
        if (
            policy.budget_pressure_share is not None
            and context.remaining_share < policy.budget_pressure_share
            and start > 0
        ):
            start -= 1
            reasons.append(
                f"budget pressure ({context.remaining_share:.0%} left): prefer cheaper {paid[start].name}"
            )
    if estimate.ranking and start is not None and paid[start].level == estimate.ranking[0]:
        chain = _ranked(estimate.ranking, settings.paid_by_level, local)
        reasons.append("fallback in the order of value: " + ", ".join(estimate.ranking))
    else:
        chain = _chain(start, paid, local, policy.fallback_strategy, request)
    if request.tier is not None and start is None:
        chain = [(t.name, p) for t in local if t.name == request.tier for p in t.providers]
    if pinned_provider is not None:
        chain = [c for c in chain if c[1] == pinned_provider] + [c for c in chain if c[1] != pinned_provider]
    if (request.tier is not None or request.model is not None) and not request.substitute:
        chain = [c for c in chain if _pinned(c, request, context)]
        reasons.append("pinned: no other tier may answer (substitute=false)")
    candidates = chain
    chain = _filter(chain, request, settings, context, reasons)
    if not chain and candidates:
        _refuse_if_too_large(candidates, request, settings, context)
    if not chain:
        wait = None if context.retry_after is None else context.retry_after([name for _, name in candidates])
        raise StrategyUnavailable(
            f"request {request.request_id}: no provider can serve it now ({'; '.join(reasons) or 'none configured'})"
            + ("" if wait is None else f"; the first may take work again in {wait:.1f} s"),
            retry_after=wait,
        )
    first_tier, first_provider = chain[0]
    tier = settings.tier_named[first_tier]
    provider = context.providers[first_provider]
    max_tokens = request.max_tokens or tier.max_tokens
    cost = worst_case_nd(
        context.prompt_tokens, max_tokens, provider.input_price_nd_per_mtok,
        provider.output_price_nd_per_mtok, context.margin_ppm,
    )
    return Selection(first_tier, first_provider, tuple(chain[1:]), tuple(reasons), cost)


def _refuse_if_too_large(
    candidates: list[tuple[str, str]], request: Request, settings: RouterSettings, context: RoutingContext
) -> None:
    """A request no candidate's window can hold is the request's fault (400), not an outage (503)."""
    tiers = settings.tier_named
    largest = max(context.providers[p].context_window for _, p in candidates)
    needs = min(context.prompt_tokens_estimate + (request.max_tokens or tiers[t].max_tokens) for t, _ in candidates)
    if needs > largest:
        raise InvalidRequest(
            f"request {request.request_id}: needs about {needs:,} tokens (prompt and max_tokens), but the largest "
            f"context window among its candidates is {largest:,}; shorten the prompt or lower max_tokens"
        )


def _pinned(entry: tuple[str, str], request: Request, context: RoutingContext) -> bool:
    tier, provider = entry
    if request.tier is not None:
        return tier == request.tier
    return provider == request.model or context.providers[provider].model == request.model


def _chain(
    start: int | None,
    paid: tuple[TierSettings, ...],
    local: tuple[TierSettings, ...],
    strategy: str,
    request: Request,
) -> list[tuple[str, str]]:
    free = [entry for tier in local for entry in tier.entries]
    if start is None:
        return free
    first = list(paid[start].entries)
    if strategy == "round_robin" and len(first) > 1:
        shift = zlib.crc32(request.request_id.encode()) % len(first)
        first = first[shift:] + first[:shift]
    if strategy == "retry":
        return first + free
    cheaper = [entry for tier in paid[start - 1 :: -1] for entry in tier.entries] if start else []
    if strategy == "downgrade":
        return first + cheaper + free
    pricier = [entry for tier in paid[start + 1 :] for entry in tier.entries]
    if strategy == "upgrade":
        return first + pricier + free
    return first + cheaper + pricier + free


def _ranked(
    ranking: tuple[str, ...], by_level: dict[str, TierSettings], local: tuple[TierSettings, ...]
) -> list[tuple[str, str]]:
    """The paid tiers (`RouterSettings.paid_by_level`) in the estimator's order of value, then the free ones."""
    ordered = [entry for level in ranking if level in by_level for entry in by_level[level].entries]
    return ordered + [entry for tier in local for entry in tier.entries]


def _filter(
    chain: list[tuple[str, str]],
    request: Request,
    settings: RouterSettings,
    context: RoutingContext,
    reasons: list[str],
) -> list[tuple[str, str]]:
    tiers, available, providers = settings.tier_named, context.available, context.providers
    upgrade, prompt_tokens = settings.selection.context_upgrade, context.prompt_tokens_estimate
    kept = []
    for position, (tier_name, provider_name) in enumerate(chain):
        if provider_name not in available:
            if position == 0:
                reasons.append(f"{provider_name} unavailable (circuit open or disabled)")
            continue
        provider = providers[provider_name]
        needed = prompt_tokens + (request.max_tokens or tiers[tier_name].max_tokens)
        if upgrade and needed > provider.context_window:
            if not kept:
                reasons.append(
                    f"context upgrade: {needed} tokens exceed {provider_name}'s window of {provider.context_window}"
                )
            continue
        kept.append((tier_name, provider_name))
    return kept

"""Tier selection: each adjustment changes the decision as documented and says so."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from actors.errors import InvalidRequest, StrategyUnavailable, UnknownModel
from actors.messages import Estimate, Request
from actors.policy.settings import RouterSettings
from actors.router.selection import RoutingContext, Selection, select
from orchestrator import load_config

CONFIG = load_config(Path(__file__).resolve().parent.parent / "configs" / "simulated.yaml", environ={})
ROUTER = CONFIG.engine.router
PROVIDERS = {p.name: p for p in CONFIG.engine.providers}
ALL = frozenset(PROVIDERS)


def decide(level: str, request: Request | None = None, router: RouterSettings = ROUTER, **context: object) -> Selection:
    ctx = RoutingContext(
        available=context.get("available", ALL),  # type: ignore[arg-type]
        remaining_share=context.get("remaining_share", 1.0),  # type: ignore[arg-type]
        providers=PROVIDERS,
        prompt_tokens=1000,
        prompt_tokens_estimate=context.get("prompt_tokens_estimate", 300),  # type: ignore[arg-type]
    )
    return select(Estimate(0.5, level, 0.9), request or Request.prompt("x"), router, ctx)


def test_each_level_starts_on_its_tier_and_breakthrough_waits_for_stagnation() -> None:
    assert [decide(level).tier for level in ("simple", "medium", "complex")] == ["tier_1", "tier_2", "tier_3"]
    capped = decide("breakthrough")
    assert capped.tier == "tier_3"
    assert any("only on stagnation" in r for r in capped.reasons)


def test_stagnation_escalates_one_tier_and_is_the_way_to_the_top() -> None:
    assert decide("medium", Request.prompt("x", stagnation=4)).tier == "tier_2"
    escalated = decide("medium", Request.prompt("x", stagnation=5))
    assert escalated.tier == "tier_3" and any("stagnated 5 generations" in r for r in escalated.reasons)
    assert decide("breakthrough", Request.prompt("x", stagnation=9)).tier == "tier_4"


def test_explicit_overrides_pin_a_tier_or_a_model() -> None:
    by_tier = decide("simple", Request.prompt("x", tier="tier_4"))
    assert by_tier.tier == "tier_4" and "override: tier tier_4" in by_tier.reasons
    by_model = decide("simple", Request.prompt("x", model="glm-4.5"))
    assert by_model.provider == "GLM-4.5" and "override: model glm-4.5" in by_model.reasons
    with pytest.raises(UnknownModel, match="no provider serves model 'nope'"):
        decide("simple", Request.prompt("x", model="nope"))
    assert by_tier.alternatives == (), "a pinned tier has no substitutes"
    allowed = decide("simple", Request.prompt("x", tier="tier_4", substitute=True))
    assert allowed.tier == "tier_4" and allowed.alternatives, "substitution only when the caller allows it"


def test_a_pinned_tier_that_is_down_is_unavailable_not_replaced() -> None:
    with pytest.raises(StrategyUnavailable, match="no provider can serve it now"):
        decide("simple", Request.prompt("x", tier="tier_1"), available=ALL - {"Qwen2.5-Coder"})


def test_budget_pressure_prefers_a_cheaper_tier() -> None:
    pressed = decide("complex", remaining_share=0.1)
    assert pressed.tier == "tier_2" and any("budget pressure (10% left)" in r for r in pressed.reasons)
    assert decide("complex", remaining_share=0.5).tier == "tier_3"


def test_unavailable_providers_are_skipped_and_named() -> None:
    chosen = decide("simple", available=ALL - {"Qwen2.5-Coder"})
    assert chosen.provider != "Qwen2.5-Coder"
    assert any("Qwen2.5-Coder unavailable" in r for r in chosen.reasons)


def test_a_prompt_too_long_for_a_window_upgrades_to_one_that_fits() -> None:
    upgraded = decide("simple", prompt_tokens_estimate=100_000)
    assert PROVIDERS[upgraded.provider].context_window >= 100_000 + 4096
    assert any("context upgrade" in r for r in upgraded.reasons)


def test_best_available_chain_goes_cheaper_then_pricier_then_local() -> None:
    chain = [decide("medium").tier] + [t for t, _ in decide("medium").alternatives]
    assert chain == ["tier_2", "tier_1", "tier_3", "tier_4", "fallback"]


def _two_providers_on_tier_2(strategy: str = "best_available") -> RouterSettings:
    tiers = tuple(attrs.evolve(t, providers=(*t.providers, "GLM-4.5")) if t.name == "tier_2" else t for t in ROUTER.tiers)
    return attrs.evolve(ROUTER, tiers=tiers, selection=attrs.evolve(ROUTER.selection, fallback_strategy=strategy))


def test_a_tiers_providers_are_tried_in_their_order_of_preference() -> None:
    selection = decide("medium", router=_two_providers_on_tier_2())
    assert (selection.provider, selection.alternatives[0]) == ("Gemini 2.5 Flash", ("tier_2", "GLM-4.5"))


def test_round_robin_rotates_the_first_tiers_providers_by_request() -> None:
    router = _two_providers_on_tier_2("round_robin")
    firsts = {decide("medium", Request.prompt("x", request_id=f"r{i}"), router=router).provider for i in range(8)}
    assert firsts == {"Gemini 2.5 Flash", "GLM-4.5"}
    again = decide("medium", Request.prompt("x", request_id="r1"), router=router)
    assert again == decide("medium", Request.prompt("x", request_id="r1"), router=router), "the same request, the same start"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("downgrade", ["tier_2", "tier_1", "fallback"]),
        ("upgrade", ["tier_2", "tier_3", "tier_4", "fallback"]),
        ("retry", ["tier_2", "fallback"]),
    ],
)
def test_other_fallback_strategies(strategy: str, expected: list[str]) -> None:
    router = attrs.evolve(ROUTER, selection=attrs.evolve(ROUTER.selection, fallback_strategy=strategy))
    selection = decide("medium", router=router)
    assert [selection.tier] + [t for t, _ in selection.alternatives] == expected


def test_the_estimated_worst_case_is_part_of_the_decision() -> None:
    selection = decide("simple")
    qwen = PROVIDERS["Qwen2.5-Coder"]
    assert selection.estimated_cost_nd == (1000 + 4096) * qwen.input_price_nd_per_mtok // 1_000_000


def test_nothing_available_is_strategy_unavailable() -> None:
    with pytest.raises(StrategyUnavailable):
        decide("simple", available=frozenset())


def test_a_request_no_window_can_hold_is_invalid_not_unavailable() -> None:
    with pytest.raises(InvalidRequest, match=r"needs about [\d,]+ tokens .* largest context window among its candidates"):
        decide("simple", Request.prompt("x", max_tokens=1_000_000), prompt_tokens_estimate=66_000)
    with pytest.raises(InvalidRequest):
        decide("simple", prompt_tokens_estimate=2_000_000)
    assert decide("simple", Request.prompt("x", max_tokens=1_000_000), prompt_tokens_estimate=40_000).tier


def test_a_value_ranking_orders_the_fallback_chain_unless_stagnation_moved_the_start() -> None:
    ctx = RoutingContext(ALL, 1.0, PROVIDERS, 1000, 300)
    ranked = Estimate(0.5, "medium", 0.9, ranking=("medium", "complex", "simple"))
    chain = select(ranked, Request.prompt("x"), ROUTER, ctx)
    assert chain.tier == "tier_2"
    assert [tier for tier, _ in chain.alternatives] == ["tier_3", "tier_1", "fallback"], "value order, then free"
    assert "fallback in the order of value: medium, complex, simple" in chain.reasons
    escalated = select(ranked, Request.prompt("x", stagnation=5), ROUTER, ctx)
    assert escalated.tier == "tier_3" and not any("order of value" in r for r in escalated.reasons)

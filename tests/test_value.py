"""Routing by value: P(success) − λ × relative expected cost, on cases whose optimum is known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ConfigError
from actors.messages import Request
from actors.policy import learned
from actors.policy.estimators import LearnedEstimator, PriorValueEstimator, build_estimator
from actors.policy.online import OnlineLearner, OnlineSettings
from actors.policy.settings import EstimatorSettings
from actors.policy.value import (
    PACED_SCALE_BOUNDS,
    PRIOR_WEIGHT,
    TierPrice,
    by_value,
    choices,
    expected_costs,
    lambda_for_cost,
    lambda_for_quality,
    pacing_scale,
    prices_by_level,
    prior_probabilities,
    quality_logits,
    ranked,
    values,
)
from orchestrator.config import load_config
from orchestrator.lab.metrics import LAMBDAS
from tests.test_learned import LEVELS, SPEC, table


@given(st.lists(st.tuples(st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0, 1), st.sampled_from([1.0, 2.0]) | st.floats(0, 9)),
                min_size=1, max_size=12))
def test_the_ranking_is_by_value_then_cost_then_position(tiers: list[tuple[float, float]]) -> None:
    """Equal values keep the cheaper tier first, and equal costs too the earlier (the fallback chain's order)."""
    scored = np.array([value for value, _ in tiers])
    costs = np.array([cost for _, cost in tiers])
    assert ranked(scored, costs) == sorted(range(len(tiers)), key=lambda i: (-tiers[i][0], tiers[i][1], i))


def test_the_tier_of_most_success_for_its_price_wins() -> None:
    probabilities = np.array([0.5, 0.9, 0.95])
    costs = np.array([1.0, 10.0, 100.0])
    assert by_value(probabilities, costs, 0.0)[0] == 2, "λ 0: the most likely tier"
    assert by_value(probabilities, costs, 0.1)[0] == 1, "0.5 - 0.001 < 0.9 - 0.01 > 0.95 - 0.1"
    assert by_value(probabilities, costs, 10.0)[0] == 0, "a large λ: the cheapest"
    assert by_value(probabilities, costs, 0.1) == [1, 2, 0], "the fallback order is the order of value"
    assert by_value(np.array([0.8, 0.8]), np.array([5.0, 5.0]), 0.3) == [0, 1], "a tie goes to the cheaper tier"


tiers = st.integers(2, 11).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    st.lists(st.integers(0, 10**9), min_size=n, max_size=n).map(sorted),
))


@given(tiers, st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_a_dearer_lambda_never_picks_a_dearer_tier(case: tuple[list[float], list[int]], low: float, high: float) -> None:
    probabilities, costs = np.array(case[0]), np.array(case[1], dtype=np.float64)
    low, high = sorted((low, high))
    cheap_choice, dear_choice = by_value(probabilities, costs, high)[0], by_value(probabilities, costs, low)[0]
    assert costs[cheap_choice] <= costs[dear_choice]
    assert values(probabilities, costs, 0.0)[by_value(probabilities, costs, 0.0)[0]] == probabilities.max()


@given(st.integers(1, 20).flatmap(lambda rows: tiers.flatmap(lambda case: st.just((rows, case)))), st.floats(0.0, 50.0))
def test_the_evaluations_replay_chooses_as_the_router_does(shape: tuple[int, tuple[list[float], list[int]]],
                                                            value_lambda: float) -> None:
    rows, (probabilities, costs) = shape
    rng = np.random.default_rng(rows)
    p = np.clip(np.array(probabilities) + rng.uniform(-0.2, 0.2, (rows, len(probabilities))), 0, 1)
    c = np.array(costs, dtype=np.float64) * rng.integers(1, 3, (rows, 1))
    assert choices(p, c, value_lambda).tolist() == [by_value(p[i], c[i], value_lambda)[0] for i in range(rows)]


def test_the_expected_cost_is_the_requests_own() -> None:
    prices = (TierPrice(100_000, 400_000, 1000), TierPrice(2_500_000, 10_000_000, 1000))
    short, long = expected_costs(prices, 100), expected_costs(prices, 100_000)
    assert short.tolist() == [10 + 200, 250 + 5000] and long.tolist() == [10_000 + 200, 250_000 + 5000]


def _config(tmp_path: Path, value: str) -> Path:
    learned.save(learned.fit(table(), learned.FitSettings(spec=SPEC)), tmp_path / "m.npz")
    config = tmp_path / "c.yaml"
    config.write_text(
        "llm_routing:\n  complexity_detection:\n    estimator: learned\n    model_path: m.npz\n"
        f"    thresholds: {{cheap: 0.6, dear: 1.0}}\n{value}  optimization: {{budget_limit: 10}}\n  model_tiers:\n"
        "    cheap: {cost_per_million_tokens: 0.1, max_tokens: 100, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: cheap}\n"
        "    dear: {cost_per_million_tokens: 30.0, max_tokens: 100, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: dear}\n"
    )
    return config


@pytest.mark.parametrize(("value_lambda", "hard_level", "easy_level"),
                         [(0.0, "dear", "dear"), (0.2, "dear", "cheap"), (5.0, "cheap", "cheap")])
def test_the_run_time_router_routes_by_value_with_the_tiers_prices(
    tmp_path: Path, value_lambda: float, hard_level: str, easy_level: str
) -> None:
    """The cheap tier fails prompts about recursion (the model learned it), the dear one costs 300 times more."""
    engine = load_config(_config(tmp_path, f"    value_lambda: {value_lambda}\n"), environ={}).engine
    providers = {p.name: p for p in engine.providers}
    estimator = build_estimator(engine.router.estimator, prices_by_level(engine.router, providers))
    assert isinstance(estimator, LearnedEstimator)
    hard = estimator.estimate(Request.prompt("Write a function number 5 using recursion over the tree"))
    easy = estimator.estimate(Request.prompt("Write a function number 5 that adds the numbers"))
    assert (hard.level, easy.level) == (hard_level, easy_level)
    assert hard.ranking[0] == hard_level and set(hard.ranking) == {"cheap", "dear"}, "every tier, best value first"
    assert hard.reasons[-1].startswith(f"value (λ {value_lambda:g}): {hard_level}")


def test_value_lambda_needs_a_learned_router_and_the_tiers_prices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="value_lambda: needs estimator learned, arc, text or auto, and no target"):
        load_config(_config(tmp_path, "    value_lambda: 0.2\n    target: 0.7\n"), environ={})
    settings = EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz"), value_lambda=0.2)
    with pytest.raises(ConfigError, match="needs the price of one paid tier per level"):
        LearnedEstimator(settings)


def test_lambda_for_a_quality_target_is_the_cheapest_that_keeps_it() -> None:
    """Perfect predictions: the cheap tier solves half the rows, the dear one all at ten times the price.

    While 1 − λ > 0 − λ/10 (λ < 10/9), the rows the cheap tier fails go to the dear one (accuracy 1.0 at 55%
    of always-dear); past it the dear tier is never worth its price and accuracy falls to 0.5.
    """
    scores = np.array([[1.0, 1.0], [0.0, 1.0]] * 50)
    costs = np.array([[1.0, 10.0]] * 100)
    found = lambda_for_quality(scores, scores, costs, 0.95, LAMBDAS)
    assert 0.9 < found.value_lambda < 10 / 9
    assert found.accuracy == 1.0 and found.best_accuracy == 1.0 and found.cost_share == pytest.approx(0.55)
    lenient = lambda_for_quality(scores, scores, costs, 0.5, LAMBDAS)
    assert lenient.value_lambda > 10 / 9 and lenient.accuracy == 0.5 and lenient.cost_share == pytest.approx(0.1)


PRIOR_LEVELS = (("cheap", 0.5), ("dear", 1.0))
PRIOR_PRICES = (TierPrice(100_000, 400_000, 1000, quality=0.6), TierPrice(3_000_000, 15_000_000, 1000, quality=0.9))


def _prior_estimator(value_lambda: float, learner: OnlineLearner | None = None) -> PriorValueEstimator:
    estimator = build_estimator(EstimatorSettings("text", {}, PRIOR_LEVELS, value_lambda=value_lambda),
                                PRIOR_PRICES, learner)
    assert isinstance(estimator, PriorValueEstimator)
    return estimator


def test_without_a_learned_model_the_tiers_quality_and_the_requests_difficulty_set_the_value() -> None:
    """Qualities 0.6 and 0.9, the dear tier 30x the price, λ 0.2: by construction, an easy request
    (score 0: 0.917 vs 0.985) is not worth 0.2 of the dear price, a hard one (score 1: 0.17 vs 0.55) is."""
    logits = quality_logits(PRIOR_PRICES)
    easy_p, hard_p = prior_probabilities(logits, 0.0), prior_probabilities(logits, 1.0)
    assert easy_p == pytest.approx([0.917, 0.985], abs=1e-3) and hard_p == pytest.approx([0.168, 0.550], abs=1e-3)
    assert prior_probabilities(logits, 0.5) == pytest.approx([0.6, 0.9]), "a middling request: the quality itself"
    estimator = _prior_estimator(0.2)
    easy = estimator.estimate(Request.prompt("x", score=0.0))
    hard = estimator.estimate(Request.prompt("x", score=1.0))
    assert (easy.level, easy.ranking) == ("cheap", ("cheap", "dear"))
    assert (hard.level, hard.ranking) == ("dear", ("dear", "cheap"))
    assert hard.features["p_success:dear"] == pytest.approx(0.55, abs=1e-3)
    assert _prior_estimator(0.0).estimate(Request.prompt("x", score=0.0)).level == "dear", "λ 0: the likeliest"


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_a_harder_request_never_lowers_a_tiers_prior(easier: float, harder: float) -> None:
    easier, harder = sorted((easier, harder))
    logits = quality_logits(PRIOR_PRICES)
    assert np.all(prior_probabilities(logits, harder) <= prior_probabilities(logits, easier))


def test_the_online_posterior_takes_over_from_the_prior_where_feedback_says_so() -> None:
    """Hard requests go to the dear tier by prior; feedback that the cheap tier answers them well moves them down."""
    learner = OnlineLearner(OnlineSettings(enabled=True, explore_share=0.0), ["cheap", "dear"], seed=1)
    estimator = _prior_estimator(0.2, learner)
    hard = Request.prompt("x", score=1.0)
    assert estimator.estimate(hard).level == "dear"
    band = learner.band(1.0)
    for i in range(int(PRIOR_WEIGHT) * 2):
        learner.answered(f"r{i}", band, "cheap")
        assert learner.observe(f"r{i}", 1.0)
    moved = estimator.estimate(hard)
    assert moved.level == "cheap" and moved.features["p_success:cheap"] == pytest.approx(0.168, abs=1e-3)
    assert any(r.startswith(f"online: posterior of band {band}") for r in moved.reasons)
    assert estimator.estimate(Request.prompt("x", score=0.0)).level == "cheap", "another band is untouched"


def test_value_by_prior_needs_every_levels_quality() -> None:
    unrated = (PRIOR_PRICES[0], TierPrice(3_000_000, 15_000_000, 1000))
    with pytest.raises(ConfigError, match="needs `quality` .* missing for level\\(s\\) dear"):
        build_estimator(EstimatorSettings("auto", {}, PRIOR_LEVELS, value_lambda=0.2), unrated)


def test_the_shipped_many_model_config_routes_by_value_over_its_seven_priced_tiers() -> None:
    engine = load_config(Path(__file__).parent.parent / "configs" / "many_models.yaml", environ={}).engine
    providers = {p.name: p for p in engine.providers}
    prices = prices_by_level(engine.router, providers)
    assert prices is not None and len(prices) >= 6 and all(p.quality is not None for p in prices)
    assert len({p.model for p in providers.values()}) >= 6
    estimator = build_estimator(engine.router.estimator, prices)
    levels = [estimator.estimate(Request.prompt("x", score=score)).level for score in (0.0, 0.5, 1.0)]
    names = [level for level, _ in engine.router.estimator.thresholds]
    assert names.index(levels[0]) < names.index(levels[1]) < names.index(levels[2]), levels


@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_less_money_left_never_lowers_lambda(left: float, more: float) -> None:
    low, high = sorted((left, more))
    assert pacing_scale(high) <= pacing_scale(low)
    assert PACED_SCALE_BOUNDS[0] <= 1 / pacing_scale(low) <= PACED_SCALE_BOUNDS[1]
    assert pacing_scale(1.0) == 1.0, "a generation with its whole allotment: λ as configured"


PACED_VALUE = """llm_routing:
  complexity_detection:
    estimator: text
    value_lambda: 0.2
    value_lambda_paced: true
    thresholds: {cheap: 0.5, dear: 1.0}
  optimization: {budget_limit: 1}
  budget:
    pacing: {run: r, budget: 0.04, generations: 2, schedule: even}
  model_tiers:
    cheap: {cost_input: 0.1, cost_output: 0.4, quality: 0.6, max_tokens: 1000, temperature: 0,
            api_endpoint: 'simulator:/v1', protocol: openai, model: cheap}
    dear: {cost_input: 3, cost_output: 15, quality: 0.9, max_tokens: 1000, temperature: 0, escalation_only: false,
           api_endpoint: 'simulator:/v1', protocol: openai, model: dear}
"""


def test_a_generation_short_of_money_routes_by_a_larger_lambda(tmp_path: Path) -> None:
    """Generation 0's allotment is $0.02; a dear call reserving $0.015 of it leaves a quarter: λ 0.2 becomes 0.8, and a
    hard request (dear 0.55 − λ, cheap 0.17 − λ/37) moves to the cheap tier, in generation 0 only."""
    import anyio

    from orchestrator import Orchestrator

    (tmp_path / "c.yaml").write_text(PACED_VALUE)
    config = load_config(tmp_path / "c.yaml", state_dir=tmp_path / "state", environ={})
    hard = Request.prompt("x", score=1.0, metadata={"generation": "0"})

    async def main() -> list[str]:
        async with Orchestrator.start(config) as orch:
            before = orch.decide(hard)
            await orch.generate(Request.prompt("spend", tier="dear", metadata={"generation": "0"}))
            after = orch.decide(hard)
            other = orch.decide(Request.prompt("x", score=1.0, metadata={"generation": "1"}))
            assert any(r.startswith("value (λ 0.8)") for r in after.reasons), after.reasons
            return [before.tier, after.tier, other.tier]

    assert anyio.run(main) == ["dear", "cheap", "dear"]


def test_value_lambda_paced_needs_a_pacing_plan(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(PACED_VALUE.replace("  budget:\n    pacing: {run: r, budget: 0.04, generations: 2, schedule: even}\n", ""))
    with pytest.raises(ConfigError, match="value_lambda_paced: needs budget.pacing"):
        load_config(tmp_path / "c.yaml", environ={})


def test_lambda_for_a_cost_target_is_the_most_accurate_within_it() -> None:
    """The same known table: λ below 10/9 is accuracy 1.0 at 55% of always-dear, above it 0.5 at 10%."""
    scores = np.array([[1.0, 1.0], [0.0, 1.0]] * 50)
    costs = np.array([[1.0, 10.0]] * 100)
    roomy = lambda_for_cost(scores, scores, costs, 0.6, LAMBDAS)
    assert roomy is not None and roomy.accuracy == 1.0 and roomy.cost_share == pytest.approx(0.55)
    tight = lambda_for_cost(scores, scores, costs, 0.3, LAMBDAS)
    assert tight is not None and tight.accuracy == 0.5 and tight.value_lambda > 10 / 9
    assert lambda_for_cost(scores, scores, costs, 0.05, LAMBDAS) is None


def test_routing_value_finds_lambda_for_a_quality_or_a_cost_target(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import orjson

    from orchestrator.cli.main import main
    from tools.benchmarks.eval_speed import write_table

    path = tmp_path / "eleven.csv"
    write_table(path, rows=150, chars=200)
    assert main(["routing", "value", "--data", str(path), "--folds", "3", "--cost-share", "0.3", "--json"]) == 0
    cheap = orjson.loads(capsys.readouterr().out)
    assert cheap["cost_share"] <= 0.3 and cheap["cost_share_target"] == 0.3
    assert main(["routing", "value", "--data", str(path), "--folds", "3", "--quality", "0.9", "--json"]) == 0
    good = orjson.loads(capsys.readouterr().out)
    assert good["accuracy"] >= 0.9 * good["best_accuracy"] and good["accuracy"] >= cheap["accuracy"]
    assert main(["routing", "value", "--data", str(path), "--folds", "3", "--cost-share", "0.0001"]) == 1
    assert "no value_lambda tried keeps the cost within 0.01% of always-dearest" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["routing", "value", "--data", str(path), "--quality", "0.9", "--cost-share", "0.3"])
    assert refused.value.code == 2


def test_calibrate_finds_lambda_for_a_cost_target_on_a_workload(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing is called: predicted success and expected cost per tier pick λ; the output config routes with it."""
    import orjson

    from orchestrator.cli.main import main
    from orchestrator.workload import text_requests

    workload = tmp_path / "prompts.jsonl"
    workload.write_bytes(b"".join(
        orjson.dumps({"messages": [{"role": "user", "content": r.messages[0].content}]}) + b"\n"
        for r in text_requests(40, 500, seed=9)
    ))
    shares = []
    for target in ("0.05", "0.5"):
        assert main(["calibrate", "--config", "many_models", "--workload", str(workload), "--cost-share", target,
                     "--json"]) == 0
        found = orjson.loads(capsys.readouterr().out)
        assert found["predicted_cost_share"] <= float(target) and found["count"] == 40
        shares.append(found)
    assert shares[0]["value_lambda"] > shares[1]["value_lambda"], "a tighter cost target, a larger λ"
    assert shares[0]["predicted_success"] <= shares[1]["predicted_success"]
    out = tmp_path / "calibrated.yaml"
    assert main(["calibrate", "--config", "many_models", "--workload", str(workload), "--cost-share", "0.05",
                 "--out", str(out)]) == 0
    assert load_config(out, environ={}).engine.router.estimator.value_lambda == pytest.approx(shares[0]["value_lambda"],
                                                                                             rel=1e-5)
    assert main(["calibrate", "--config", "coding_tiers", "--workload", str(workload), "--cost-share", "0.2"]) == 2
    assert "does not route by value" in capsys.readouterr().err
    assert main(["calibrate", "--config", "many_models", "--workload", str(workload),
                 "--mix", "20,20,20,10,10,10,10", "--json"]) == 0, "thresholds of a value config calibrate too"


def test_routing_an_arc_task_by_value_renders_its_prompt_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GA asks about one task again and again; its expected costs are worked out the first time only."""
    from actors.policy import estimators
    from orchestrator.workload import arc_requests

    rendered: list[object] = []
    real = estimators.request_messages
    monkeypatch.setattr(estimators, "request_messages", lambda request: rendered.append(request.task) or real(request))
    estimator = build_estimator(EstimatorSettings("auto", {}, PRIOR_LEVELS, value_lambda=0.2), PRIOR_PRICES)
    first, again = arc_requests(1) * 2
    assert estimator.estimate(first).ranking == estimator.estimate(again).ranking
    assert len(rendered) == 1

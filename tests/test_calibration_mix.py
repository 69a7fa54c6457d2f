"""Calibration reaches a mix on ARC and on text, and routes exactly as calibrated (issue 12, item 7)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.messages import ArcPair, ArcTask, Request
from actors.policy.calibration import calibrate
from actors.policy.estimators import ArcEstimator, Levels, TextEstimator, continuous_score
from actors.policy.settings import EstimatorSettings
from orchestrator.workload import arc_requests, arc_tasks

ARC_LEVELS = ("simple", "medium", "complex", "breakthrough")
CODING = (("simple", 25), ("moderate", 50), ("complex", 75), ("critical", 100))
MIX = [60, 25, 10, 5]


def routed_mix(levels: list[str], names: tuple[str, ...]) -> tuple[float, ...]:
    counts = Counter(levels)
    return tuple(counts[n] / len(levels) for n in names)


def test_arc_default_weights_calibrate_to_the_mix_and_route_exactly_as_calibrated() -> None:
    requests = arc_requests(10_000)
    scores = [ArcEstimator(EstimatorSettings("arc", {}, tuple((n, 1.0) for n in ARC_LEVELS))).estimate(r).score for r in requests]
    result = calibrate(scores, MIX, ARC_LEVELS)
    assert all(abs(t - a) <= 0.02 for t, a in zip(result.target, result.achieved))
    routed = ArcEstimator(EstimatorSettings("arc", {}, result.thresholds))
    assert routed_mix([routed.estimate(r).level for r in requests], ARC_LEVELS) == pytest.approx(result.achieved)


def _auc(positive: list[float], negative: list[float]) -> float:
    p, n = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def test_default_arc_weights_separate_evaluation_from_training_better_than_the_storys() -> None:
    story = {"grid_size_score": 0.3, "pattern_complexity": 0.3, "color_diversity": 0.2, "transformation_hints": 0.2}
    levels = (("all", 1.0),)
    train, evaluation = arc_tasks(None, "training"), arc_tasks(None, "evaluation")

    def auc(weights: dict[str, float]) -> float:
        estimator = ArcEstimator(EstimatorSettings("arc", weights, levels))
        return _auc([estimator.estimate(Request(task=t)).score for t in evaluation],
                    [estimator.estimate(Request(task=t)).score for t in train])

    assert auc({}) > auc(story) + 0.03


grids = st.integers(1, 6).flatmap(
    lambda w: st.lists(st.lists(st.integers(0, 9), min_size=w, max_size=w).map(tuple), min_size=1, max_size=6).map(tuple)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(grids, grids), min_size=1, max_size=3))
def test_a_threshold_equal_to_a_reported_score_keeps_that_task_at_or_below_it(pairs: list[tuple[object, object]]) -> None:
    task = ArcTask("t", tuple(ArcPair(a, b) for a, b in pairs), ())  # type: ignore[arg-type]
    score = ArcEstimator(EstimatorSettings("arc", {}, (("only", 1.0),))).estimate(Request(task=task)).score
    if not 0.0 < score < 1.0:
        return
    on_the_bound = ArcEstimator(EstimatorSettings("arc", {}, (("low", score), ("high", 1.0))))
    assert on_the_bound.estimate(Request(task=task)).level == "low"


@settings(max_examples=300)
@given(st.integers(1, 20).map(lambda k: 5 * k), st.integers(0, 10**6))
def test_continuous_text_scores_never_cross_a_five_point_threshold(points: int, chars: int) -> None:
    levels = Levels(CODING)
    score = continuous_score(points, chars)
    assert (points - 5) / 100 < score <= points / 100
    assert levels.level(score)[0] == levels.level(points / 100)[0]


def test_longer_prompts_of_equal_points_score_higher() -> None:
    assert continuous_score(10, 100) < continuous_score(10, 400) < continuous_score(10, 4000)


def word_problems(count: int = 800) -> list[Request]:
    """A text workload like GSM8K's: nearly every prompt matches no rule, lengths vary."""
    rng = np.random.default_rng(7)
    sentences = ["Tom has 3 apples.", "He buys 4 more each day.", "A box holds 12 eggs.", "She sells half of them.",
                 "The price rises by 10 percent.", "How many are left at the end of the week?"]
    return [Request.prompt(" ".join(sentences[k] for k in rng.integers(0, len(sentences), rng.integers(2, 14))) + f" (case {i})")
            for i in range(count)]


def test_a_text_workload_calibrates_to_the_mix_within_two_points() -> None:
    estimator = TextEstimator(EstimatorSettings("text", {}, CODING))
    requests = word_problems()
    scores = [estimator.estimate(r).score for r in requests]
    assert len(set(scores)) > 100  # the rules alone give these prompts one or two distinct scores
    result = calibrate(scores, MIX, [n for n, _ in CODING])
    assert all(abs(t - a) <= 0.02 for t, a in zip(result.target, result.achieved))

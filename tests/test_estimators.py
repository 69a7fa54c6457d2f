"""Complexity estimators: ARC features, the coding rules, levels, confidence, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import InvalidRequest
from actors.messages import ArcPair, ArcTask, Request
from actors.policy.arc_features import arc_features, color_diversity, count_objects, grid_size_score, validate
from actors.policy.calibration import calibrate
from actors.policy.estimators import ArcEstimator, Levels, TextEstimator
from actors.policy.prompts import render_grid
from actors.policy.settings import EstimatorSettings

ARC = EstimatorSettings(
    "arc",
    {"grid_size_score": 0.3, "pattern_complexity": 0.3, "color_diversity": 0.2, "transformation_hints": 0.2},
    (("simple", 0.3), ("medium", 0.6), ("complex", 0.85), ("breakthrough", 0.95)),
)
CODING = EstimatorSettings("text", {}, (("simple", 25), ("moderate", 50), ("complex", 75), ("critical", 100)))


def grids(max_side: int = 8) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return st.integers(1, max_side).flatmap(
        lambda w: st.lists(st.lists(st.integers(0, 9), min_size=w, max_size=w).map(tuple), min_size=1, max_size=max_side).map(tuple)
    )


tasks = st.builds(
    lambda pairs, test: ArcTask("t", tuple(ArcPair(a, b) for a, b in pairs), tuple(test)),
    st.lists(st.tuples(grids(), grids()), min_size=1, max_size=3),
    st.lists(grids(), max_size=1),
)


def _flood_fill_objects(grid: tuple[tuple[int, ...], ...]) -> int:
    """The definition, cell by cell: 4-connected groups of one non-zero colour."""
    seen: set[tuple[int, int]] = set()
    objects = 0
    for r, row in enumerate(grid):
        for c, colour in enumerate(row):
            if not colour or (r, c) in seen:
                continue
            objects += 1
            stack = [(r, c)]
            seen.add((r, c))
            while stack:
                y, x = stack.pop()
                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                    if 0 <= ny < len(grid) and 0 <= nx < len(row) and (ny, nx) not in seen and grid[ny][nx] == colour:
                        seen.add((ny, nx))
                        stack.append((ny, nx))
    return objects


@settings(max_examples=300, deadline=None)
@given(st.one_of(grids(), st.integers(1, 12).flatmap(
    lambda w: st.lists(st.lists(st.integers(0, 2), min_size=w, max_size=w).map(tuple), min_size=1, max_size=12).map(tuple)
)))
def test_objects_are_counted_as_a_flood_fill_counts_them(grid: tuple[tuple[int, ...], ...]) -> None:
    assert count_objects(grid) == _flood_fill_objects(grid)


@settings(max_examples=200, deadline=None)
@given(st.one_of(grids(), st.lists(st.lists(st.integers(-3, 300), min_size=2, max_size=2).map(tuple), min_size=1,
                                         max_size=3).map(tuple)))
def test_a_grid_renders_as_rows_of_its_values(grid: tuple[tuple[int, ...], ...]) -> None:
    assert render_grid(grid) == "\n".join("".join(str(v) for v in row) for row in grid)


@settings(max_examples=150, deadline=None)
@given(tasks)
def test_every_feature_and_the_score_stay_in_the_unit_interval(task: ArcTask) -> None:
    features = arc_features(task)
    assert all(0.0 <= v <= 1.0 for v in features.values())
    estimate = ArcEstimator(ARC).estimate(Request(task=task))
    assert 0.0 <= estimate.score <= 1.0 and 0.5 <= estimate.confidence <= 1.0


@settings(max_examples=100, deadline=None)
@given(tasks, grids(30))
def test_a_larger_grid_never_lowers_grid_size(task: ArcTask, extra: tuple[tuple[int, ...], ...]) -> None:
    bigger = ArcTask(task.task_id, task.train, task.test + (extra,))
    assert grid_size_score(bigger) >= grid_size_score(task)


@settings(max_examples=100, deadline=None)
@given(tasks, st.integers(0, 9))
def test_more_colours_never_lower_colour_diversity(task: ArcTask, colour: int) -> None:
    richer = ArcTask(task.task_id, task.train, task.test + (((colour,),),))
    assert color_diversity(richer) >= color_diversity(task)


@settings(max_examples=200)
@given(st.floats(0, 1), st.floats(0, 1))
def test_levels_are_monotone_in_the_score(a: float, b: float) -> None:
    levels = Levels(ARC.thresholds)
    low, high = sorted((a, b))
    assert levels.names.index(levels.level(low)[0]) <= levels.names.index(levels.level(high)[0])


@settings(max_examples=50, deadline=None)
@given(tasks)
def test_the_same_task_always_gets_the_same_estimate(task: ArcTask) -> None:
    assert ArcEstimator(ARC).estimate(Request(task=task)) == ArcEstimator(ARC).estimate(Request(task=task))


def test_confidence_is_lowest_on_a_threshold_and_highest_mid_band() -> None:
    levels = Levels(ARC.thresholds)
    assert levels.level(0.3) == ("simple", 0.5)
    assert levels.level(0.45) == ("medium", 1.0)


@pytest.mark.parametrize(
    ("text", "level", "tier"),
    [
        ("Fix typo in README.md", "simple", "haiku"),
        ("Implement user authentication system with login and password hashing in auth.py and middleware.py", "moderate", "sonnet"),
        ("Design a distributed system architecture with async message queues for high throughput", "complex", "opus"),
        ("Fix the security vulnerability in production: SQL injection in the login endpoint", "critical", "opus"),
    ],
)
def test_the_coding_sources_four_examples(text: str, level: str, tier: str) -> None:
    from pathlib import Path

    from actors.router.selection import tier_for_level
    from orchestrator.config import load_config

    estimate = TextEstimator(CODING).estimate(Request.prompt(text))
    assert estimate.level == level
    config = load_config(Path(__file__).resolve().parent.parent / "configs" / "coding_tiers.yaml", environ={})
    levels = tuple(l for l, _ in config.engine.router.estimator.thresholds)
    assert config.engine.router.tiers[tier_for_level(level, config.engine.router.tiers, levels)].name == tier


def test_a_request_may_bring_its_own_score_or_features() -> None:
    estimator = ArcEstimator(ARC)
    assert estimator.estimate(Request(score=0.9)).level == "breakthrough"
    given_features = {"grid_size_score": 1.0, "pattern_complexity": 1.0, "color_diversity": 1.0, "transformation_hints": 1.0}
    assert estimator.estimate(Request(features=given_features)).score == 1.0


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ([{"input": [[1, 2], [3]], "output": [[1]]}], r"train\[0\]\.input is ragged: row 1 has 1 cells"),
        ([{"input": [[1, 12]], "output": [[1]]}], r"train\[0\]\.input\[0\]\[1\] is 12, colours are integers 0-9"),
        ([{"input": [], "output": [[1]]}], r"train\[0\]\.input is empty"),
        ([{"input": [[0] * 31], "output": [[1]]}], r"train\[0\]\.input is 1x31, above the 30x30 maximum"),
        ([], r"has no train pairs"),
        ([{"input": [[1]], "output": [[1]]}] * 101, r"101 train pairs and 0 test inputs, above the 100 and 20 maximum"),
    ],
)
def test_malformed_tasks_are_rejected_with_where_and_what(train: list[dict[str, object]], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        validate(ArcTask.from_lists("bad-task", train))


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ([{"input": [[1.5]], "output": [[1]]}], (), r"train\[0\]\.input\[0\]\[0\] must be a whole number, got 1\.5"),
        ([{"input": [["3"]], "output": [[1]]}], (), r"train\[0\]\.input\[0\]\[0\] must be a whole number, got '3'"),
        ([{"input": [[1]]}], (), r"train\[0\] must be an object with input and output grids"),
        ([{"input": [5], "output": [[1]]}], (), r"train\[0\]\.input\[0\] must be a list of cells, got int"),
        ("pairs", (), r"train must be a list of \{input, output\} pairs, got str"),
        ([{"input": [[1]], "output": [[1]]}], [{"output": [[1]]}], r"test\[0\] must be an object with an input grid"),
    ],
)
def test_a_task_from_json_that_is_not_grids_is_refused_naming_the_place(train: object, test: object, message: str) -> None:
    """A cell of 1.5 was cut to 1 and "3" read as 3 (a different task sent to a provider); a pair without its
    output ended in a bare KeyError."""
    with pytest.raises(InvalidRequest, match=r"^ARC task bad-task: " + message):
        ArcTask.from_lists("bad-task", train, test)


def test_a_task_from_numpy_rows_reads_as_whole_numbers() -> None:
    task = ArcTask.from_lists("np", [{"input": np.array([[1, 2], [3, 4]]), "output": np.array([[0]])}])
    assert task.train[0].input == ((1, 2), (3, 4)) and all(type(v) is int for row in task.train[0].input for v in row)


_CELLS = st.sampled_from([0, 1, 9, 9, 5, 10, -1, True, 1.0, "3"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.lists(_CELLS, min_size=1, max_size=4), min_size=1, max_size=4), min_size=1, max_size=3))
def test_a_task_is_accepted_exactly_when_every_grid_is_rectangular_with_int_colours_0_to_9(grids: list) -> None:
    """Cell by cell, as the error names the first bad one: a bool, a float or a string is no colour, even if it
    equals one (True == 1, 1.0 == 1); the check that runs a grid at a time must agree."""
    task = ArcTask("t", tuple(ArcPair(tuple(map(tuple, g)), ((0,),)) for g in grids))
    bad = [(i, r, c) for i, g in enumerate(grids) for r, row in enumerate(g) for c, v in enumerate(row)
           if len(row) != len(g[0]) or type(v) is not int or not 0 <= v <= 9]
    if not bad:
        validate(task)
        assert set(arc_features(task)) == {"grid_size_score", "pattern_complexity", "color_diversity",
                                           "transformation_hints"}
        return
    with pytest.raises(InvalidRequest, match=rf"train\[{bad[0][0]}\]\.input"):
        validate(task)


def test_calibration_on_the_arc_training_set_reaches_the_target_mix() -> None:
    from orchestrator.workload import arc_requests

    estimator = ArcEstimator(ARC)
    scores = [estimator.estimate(r).score for r in arc_requests(10_000)]
    result = calibrate(scores, [60, 25, 10, 5], ["simple", "medium", "complex", "breakthrough"])
    assert len(scores) >= 400
    for target, achieved in zip(result.target, result.achieved):
        assert abs(target - achieved) <= 0.02

"""Leave one domain out: the held-out domain never reaches the fit, and what a router learned elsewhere is scored on it."""

from __future__ import annotations

import numpy as np
import pytest

from actors.messages import Request
from actors.policy import learned
from actors.policy.estimators import build_estimator
from actors.policy.settings import EstimatorSettings
from orchestrator.lab.domains import (
    apgr,
    concatenated,
    leave_one_domain_out,
    text_default_scores,
)
from orchestrator.lab.outcomes import OutcomeTableError, build_table

MODELS = ("weak", "strong")
MARKERS = {"alpha": ("zorblax", "mintern"), "beta": ("quintic", "barlows"), "gamma": ("vexilla", "coppice")}
"""Per domain, the word of its hard prompts and of its easy ones: both its own, so nothing carries across."""
SETTINGS = learned.FitSettings(spec=learned.FeatureSpec(buckets=1024), iterations=150)


def _domain(name: str, words: tuple[str, str], rows: int = 80) -> object:
    """The weak model fails exactly the prompts carrying the domain's hard word; lengths say nothing."""
    records = []
    for i in range(rows):
        hard = i % 2 == 0
        word = words[0] if hard else words[1]
        records.append({"prompt": f"{name} question {i:03d}: consider the {word} case and answer",
                        "weak": not hard, "strong": True})
    return build_table(records, name)


def test_a_held_out_domain_is_scored_by_a_router_that_never_saw_it() -> None:
    """Each domain's signal is words only it has: fitted without it, the router cannot know them (APGR near chance,
    0.5), while the same domain inside the fit is ranked perfectly (the oracle's 0.75 here: half the prompts need the
    strong model). So nothing of a held-out domain reaches its fit."""
    tables = {name: concatenated([_domain(name, marker)], MODELS, name) for name, marker in MARKERS.items()}
    results = leave_one_domain_out(tables, SETTINGS)
    assert [r.domain for r in results] == list(MARKERS) and all(r.prompts == 80 for r in results)
    oracle = apgr(tables["alpha"].scores[:, 1] - tables["alpha"].scores[:, 0], tables["alpha"])
    assert oracle == pytest.approx(0.75, abs=0.01)
    for result in results:
        assert result.model < 0.68, result  # a leak would rank it as the oracle does, 0.75
        assert result.length == pytest.approx(0.5), "equal lengths carry no signal"
        assert result.coded == 0 and result.shipped == result.blended, "no coding signal: shipped is the model's blend"
    everything = concatenated(list(tables.values()), MODELS, "all")
    inside = learned.fit(everything, SETTINGS)
    alpha = tables["alpha"]
    predicted = inside.predict_batch(learned.table_features(alpha, inside.spec))
    assert apgr(predicted[:, 1] - predicted[:, 0], alpha) == pytest.approx(oracle)


def test_parts_whose_columns_came_out_in_another_order_are_realigned() -> None:
    swapped = build_table([{"prompt": "p", "weak": 0.9, "strong": 0.1}, {"prompt": "q", "weak": 0.8, "strong": 0.2}], "s")
    assert swapped.models == ("strong", "weak"), "ordered by mean score when there are no costs"
    joined = concatenated([_domain("a", ("zorblax", "mintern"), 4), swapped], MODELS, "joined")
    assert joined.models == MODELS and joined.scores[-1].tolist() == [0.8, 0.2]
    with pytest.raises(OutcomeTableError, match="expected weak, strong"):
        concatenated([build_table([{"prompt": "p", "weak": 1, "other": 0}], "o")], MODELS, "bad")
    with pytest.raises(ValueError, match="at least two domains"):
        leave_one_domain_out({"only": joined})
    assert np.isfinite(joined.scores).all()


def test_the_shipped_text_default_leaves_prompts_with_a_coding_signal_to_the_rules() -> None:
    model = learned.fit(concatenated([_domain("alpha", MARKERS["alpha"])], MODELS, "alpha"), SETTINGS)
    prompts = ["alpha question: consider the zorblax case", "Fix the bug in parser.py and lexer.py", "def f(): pass"]
    blended, shipped, coded = text_default_scores(model, prompts)
    rules = build_estimator(EstimatorSettings("text", {}, (("weak", 0.5), ("strong", 1.0))))
    assert coded == 2 and shipped[0] == blended[0]
    assert shipped[1:].tolist() == [rules.estimate(Request.prompt(p)).score for p in prompts[1:]]

"""Leave one domain out: how a router fitted on some kinds of prompts does on a kind it never saw.

k-fold on one table says how a router does on more prompts like its training ones; a
user's prompts are another domain. Here each domain in turn is held out: the learned
router is fitted on the others' rows alone and scored on it (two tiers, APGR), beside
the routers that need no training (prompt length, the keyword heuristic). The text
default is scored by the estimator a configuration builds (`text_model`), with the
fold's model: for every prompt (`text_model_scope: all`, the blended score of
`LearnedModel.blended_percentile`) and as shipped (`plain`: the keyword rules keep the
prompts with a coding signal).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from actors.messages import Request
from actors.policy import learned
from actors.policy.estimators import build_estimator
from actors.policy.settings import EstimatorSettings
from orchestrator.lab import metrics
from orchestrator.lab.evaluation import heuristic_scores
from orchestrator.lab.outcomes import OutcomeTable, OutcomeTableError


@attrs.frozen
class DomainResult:
    domain: str
    prompts: int
    blended: float
    """APGR of the model's gain and the prompt's length, blended by training percentiles, on every prompt."""
    shipped: float
    """APGR of the text default as shipped: the blended score, but the keyword rules' on prompts with a coding signal."""
    coded: int
    """Prompts with a coding signal (scored by the rules when shipped)."""
    model: float
    length: float
    heuristic: float


def concatenated(parts: Sequence[OutcomeTable], models: tuple[str, str], source: str) -> OutcomeTable:
    """The parts' rows under one header, columns in `models` order whatever order each part read them in.

    A table without costs orders its models by mean score, so a part where the weak
    model happened to score higher would otherwise come out with its columns swapped.
    """
    columns = []
    for part in parts:
        if set(part.models) != set(models):
            raise OutcomeTableError(f"{part.source}: models {', '.join(part.models)}; expected {', '.join(models)}")
        columns.append([part.models.index(m) for m in models])
    return OutcomeTable(
        prompts=tuple(p for part in parts for p in part.prompts), models=models,
        scores=np.vstack([part.scores[:, c] for part, c in zip(parts, columns)]),
        costs_nd=np.vstack([part.costs_nd[:, c] for part, c in zip(parts, columns)]),
        source=source,
    )


def apgr(score: np.ndarray, table: OutcomeTable) -> float:
    costs = table.relative_costs()
    return metrics.two_tier(score, table.scores[:, 0], table.scores[:, -1], costs[:, 0], costs[:, -1]).apgr


def leave_one_domain_out(tables: Mapping[str, OutcomeTable], settings: learned.FitSettings = learned.FitSettings(),
                         fitted: Callable[[str, int], None] | None = None) -> list[DomainResult]:
    """Per domain of `tables` (two-model, complete, same models in the same order): fitted on the others, scored on it.

    `fitted(domain, training rows)` is called after each fit (a progress line).
    """
    if len(tables) < 2:
        raise ValueError(f"leave one domain out needs at least two domains, got {len(tables)}")
    models = next(iter(tables.values())).models
    results = []
    for held_out, test in tables.items():
        train = concatenated([t for name, t in tables.items() if name != held_out], models, f"all but {held_out}")
        model = learned.fit(train, settings)
        if fitted is not None:
            fitted(held_out, len(train))
        predicted = model.predict_batch(learned.table_features(test, model.spec))
        blended, shipped, coded = text_default_scores(model, test.prompts)
        results.append(DomainResult(
            held_out, len(test), apgr(blended, test), apgr(shipped, test), coded,
            apgr(predicted[:, -1] - predicted[:, 0], test),
            apgr(np.array([len(p) for p in test.prompts], dtype=float), test), apgr(heuristic_scores(test.prompts), test),
        ))
    return results


def text_default_scores(model: learned.LearnedModel, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(scope all, scope plain, prompts the rules kept): the scores `text_model` gives with `model`, by the estimator
    a configuration builds."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fold.npz"
        learned.save(model, path)
        scores = []
        for scope in ("all", "plain"):
            estimator = build_estimator(EstimatorSettings(
                "text", {}, (("weak", 0.5), ("strong", 1.0)), text_model_path=str(path), text_model_scope=scope))
            scores.append([estimator.estimate(Request.prompt(p)) for p in prompts])
    coded = sum(1 for estimate in scores[1] if estimate.reasons[-1].startswith("coding signal"))
    return (np.array([e.score for e in scores[0]]), np.array([e.score for e in scores[1]]), coded)

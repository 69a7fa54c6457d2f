"""Replaying routers over an outcome table, with k-fold cross-validation for learned ones.

Routers (each under this name in results and in `--json`):

- `always-weak`, `always-strong`: the two ends;
- `random`: a constant score, so every order is equally likely (exactly APGR 0.5);
- `length`: the prompt's length in characters, longer to the stronger model;
- `heuristic`: the engine's own estimator (`auto`: the text rules for prompts);
- `learned`: `learned.py`, fitted k times, each time without the fold it scores:
  a prompt is only ever scored by a model that never saw it;
- `policy`: the same predictions routed by the run-time value policy (`value.py`:
  P(success) − λ × cost relative to the row's dearest tier, ties to the cheaper), for
  λ from 0 to ∞: what `complexity_detection.value_lambda` does in the router;
- `oracle`: the true outcomes (an upper bound, not a router).

Only rows where every model was observed are scored; rows with missing outcomes (a
sparse history) still train the learned router in every fold.

On a table of a thousand prompts one split into folds is one draw: the learned
router's APGR on GSM8K moves by 0.03 between fold seeds. `repeated` replays the same
routers over several splits, so a difference between two routers can be read against
the spread a split alone gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from actors.messages import Request
from actors.policy import learned, value
from actors.policy.estimators import build_estimator
from actors.policy.prompt_features import FeatureBatch
from actors.policy.settings import EstimatorSettings
from orchestrator.lab import metrics
from orchestrator.lab.outcomes import OutcomeTable

ROUTERS = ("random", "length", "heuristic", "learned", "policy", "oracle")
_HEURISTIC = EstimatorSettings("auto", {}, (("simple", 0.3), ("medium", 0.6), ("complex", 0.85), ("breakthrough", 1.0)))


@attrs.frozen(eq=False)
class RouterResult:
    name: str
    two_tier: metrics.TwoTier
    multi_tier: metrics.MultiTier | None


@attrs.frozen(eq=False)
class Evaluation:
    table: OutcomeTable
    rows: int
    folds: int
    results: tuple[RouterResult, ...]
    weak: str
    strong: str

    def result(self, name: str) -> RouterResult:
        return next(r for r in self.results if r.name == name)


@attrs.frozen(eq=False)
class SplitSpread:
    """One router's figures over repeated fold splits, in seed order."""

    name: str
    apgr: tuple[float, ...]
    cpt80: tuple[float | None, ...]

    @property
    def mean_apgr(self) -> float:
        return float(np.mean(self.apgr))

    @property
    def mean_cpt80(self) -> float | None:
        """The mean over the splits that reach 80%; None when one never does."""
        return None if None in self.cpt80 else float(np.mean([c for c in self.cpt80 if c is not None]))


def repeated(table: OutcomeTable, routers: Sequence[str] = ROUTERS, folds: int = 5, seed: int = 0, repeats: int = 1,
             settings: learned.FitSettings = learned.FitSettings()) -> tuple[Evaluation, tuple[SplitSpread, ...]]:
    """`evaluate` over the splits of seeds seed .. seed + repeats - 1: the first split's evaluation and every
    router's figures over all of them (the features are computed once)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    batch = learned.table_features(table, settings.spec) if {"learned", "policy"} & set(routers) else None
    evaluations = [evaluate(table, routers, folds, seed + k, settings, batch) for k in range(repeats)]
    spreads = tuple(
        SplitSpread(result.name, tuple(e.result(result.name).two_tier.apgr for e in evaluations),
                    tuple(e.result(result.name).two_tier.cpt(0.8) for e in evaluations))
        for result in evaluations[0].results
    )
    return evaluations[0], spreads


def fold_of(rows: int, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, 0..folds-1: a seeded shuffle cut into near-equal parts."""
    assignment = np.empty(rows, dtype=int)
    for fold, part in enumerate(np.array_split(np.random.default_rng(seed).permutation(rows), folds)):
        assignment[part] = fold
    return assignment


def cross_validated(table: OutcomeTable, scored: np.ndarray, folds: int, seed: int,
                    settings: learned.FitSettings = learned.FitSettings(),
                    batch: FeatureBatch | None = None) -> np.ndarray:
    """(len(scored), models) P(success) for the rows `scored`, each predicted by a model fitted without its fold
    (`batch`: the table's features, when the caller has them)."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(scored) < folds:
        raise ValueError(f"{len(scored)} complete rows cannot be cut into {folds} folds")
    batch = batch if batch is not None else learned.table_features(table, settings.spec)
    assignment = fold_of(len(scored), folds, seed)
    always = np.setdiff1d(np.arange(len(table)), scored)
    predicted = np.zeros((len(scored), len(table.models)))
    for fold in range(folds):
        test = scored[assignment == fold]
        train = np.sort(np.concatenate([always, scored[assignment != fold]]))
        model = learned.fit(table.rows(train), settings, batch.subset(train))
        predicted[assignment == fold] = model.predict_batch(batch.subset(test))
    return predicted


def heuristic_scores(prompts: Sequence[str]) -> np.ndarray:
    estimator = build_estimator(_HEURISTIC)
    return np.array([estimator.estimate(Request.prompt(p)).score for p in prompts])


def evaluate(table: OutcomeTable, routers: Sequence[str] = ROUTERS, folds: int = 5, seed: int = 0,
             settings: learned.FitSettings = learned.FitSettings(),
             batch: FeatureBatch | None = None) -> Evaluation:
    """Every router of `routers` on the complete rows of `table`, two-tier and (3+ models) multi-tier."""
    if len(table.models) < 2:
        raise ValueError(f"routing needs at least two models, the table has {len(table.models)}")
    scored = np.flatnonzero(~np.isnan(table.scores).any(axis=1))
    complete = table.rows(scored)
    scores, costs = complete.scores, complete.relative_costs()
    weak, strong = scores[:, 0], scores[:, -1]
    multi = len(table.models) > 2
    predicted = (
        cross_validated(table, scored, folds, seed, settings, batch) if {"learned", "policy"} & set(routers) else None
    )
    results = []
    for name in ("always-weak", "always-strong", *routers):
        if name in ("always-weak", "always-strong"):
            results.append(RouterResult(name, _ends(weak, strong, costs, at_strong=name == "always-strong"), None))
            continue
        if name in ("learned", "policy"):
            assert predicted is not None
            score = predicted[:, -1] - predicted[:, 0]
            if not multi:
                policies = None
            elif name == "learned":
                policies = metrics.sweep_predictions(predicted, costs)
            else:
                policies = [np.argmin(costs, axis=1) if np.isinf(lam) else value.choices(predicted, costs, lam)
                            for lam in metrics.LAMBDAS]
        elif name == "oracle":
            score = strong - weak
            policies = metrics.sweep_predictions(scores, costs) if multi else None
        else:
            score = np.zeros(len(scored)) if name == "random" else (
                np.array([len(p) for p in complete.prompts], dtype=float) if name == "length"
                else heuristic_scores(complete.prompts)
            )
            policies = _random_policies(len(scored), len(table.models), seed) if name == "random" and multi else (
                metrics.ladder(score, len(table.models), seed) if multi else None
            )
        two = metrics.two_tier(score, weak, strong, costs[:, 0], costs[:, -1])
        results.append(RouterResult(name, two, metrics.multi_tier(policies, scores, costs) if policies else None))
    return Evaluation(table, len(scored), folds, tuple(results), table.models[0], table.models[-1])


def _ends(weak: np.ndarray, strong: np.ndarray, costs: np.ndarray, at_strong: bool) -> metrics.TwoTier:
    """A router that never moves: a one-point curve repeated at every k."""
    n = len(weak)
    accuracy = np.full(n + 1, (strong if at_strong else weak).mean())
    total = costs[:, -1].sum()
    spent = (costs[:, -1] if at_strong else costs[:, 0]).sum()
    share = np.full(n + 1, spent / total if total > 0 else float(at_strong))
    return metrics.TwoTier(accuracy, share, float(weak.mean()), float(strong.mean()))


def _random_policies(rows: int, tiers: int, seed: int) -> list[np.ndarray]:
    """Uniformly random tiers, mixed from all-cheapest to all-strongest in expectation."""
    draws = np.random.default_rng(seed).random(rows)
    return [np.where(draws < t, tiers - 1, 0) for t in metrics.GRID]

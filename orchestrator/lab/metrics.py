"""Routing quality on an outcome table: quality–cost curves, APGR, CPT, cost to reach a quality.

Two tiers (RouteLLM's definitions). A router ranks prompts by a score, higher = send to
the strong model. Sending the top k of n prompts to the strong model gives an expected
accuracy acc(k); prompts with equal scores enter the strong side in proportion (the
expected value over every order among them), so a constant score is exactly random.

- PGR(k) = (acc(k) - weak) / (strong - weak): the share of the weak→strong gap recovered;
- APGR = the mean of PGR(k) over k = 0..n (random 0.5, always-strong 1.0; an oracle
  exceeds 1 where the weak model is right and the strong one wrong);
- CPT(q) = the smallest share k/n of strong calls with PGR ≥ q;
- cost to reach 95% of the strong model's quality: the least cost along the curve, as
  a share of always-strong cost, whose accuracy is ≥ 0.95 × strong.

Several tiers. A policy assigns each prompt a tier; its point is (cost, quality), cost
as a share between always-cheapest (0) and always-strongest (1), quality as PGR between
them. A family of policies sweeps from cheapest to strongest: for per-tier success
predictions p (or the oracle's true scores), tier = argmax p − λ·cost over λ; for a
scalar score, a ladder: with r the prompt's rank quantile (ties broken by a seeded
shuffle), tier = ⌊m · clip(r + 2t − 1, 0, 1)⌋ for t from 0 to 1. APGR is the mean PGR
on a grid of 101 cost shares (linear interpolation; past the family's last point, its
last quality).
"""

from __future__ import annotations

import attrs
import numpy as np

GRID = np.linspace(0.0, 1.0, 101)
LAMBDAS = np.concatenate([[0.0], np.logspace(-4, 3, 120), [np.inf]])


def proportional_curve(score: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Expected Σ value when the top k by score take `high` and the rest `low`, k = 0..n; ties in proportion."""
    n = len(score)
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    gain = (high - low)[order].astype(float)
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    sizes = np.diff(np.r_[starts, n])
    sums = np.add.reduceat(gain, starts) if n else np.zeros(0)
    before = np.r_[0.0, np.cumsum(sums)[:-1]]
    group = np.repeat(np.arange(len(starts)), sizes)
    position = np.arange(n) - starts[group] + 1
    totals = before[group] + sums[group] / sizes[group] * position
    return float(np.sum(low)) + np.r_[0.0, totals]


@attrs.frozen
class TwoTier:
    """A router's two-tier curve and figures; `accuracy[k]` with k prompts on the strong model."""

    accuracy: np.ndarray
    cost_share: np.ndarray
    weak: float
    strong: float

    @property
    def pgr(self) -> np.ndarray:
        return (self.accuracy - self.weak) / (self.strong - self.weak)

    @property
    def apgr(self) -> float:
        return float(self.pgr.mean())

    def cpt(self, recovered: float) -> float | None:
        """Share of strong calls needed to recover `recovered` of the gap (None: never)."""
        reached = np.flatnonzero(self.pgr >= recovered - 1e-12)
        return None if len(reached) == 0 else float(reached[0] / (len(self.accuracy) - 1))

    def cost_to_reach(self, share_of_strong: float) -> float | None:
        """Least cost (share of always-strong cost) with accuracy ≥ share × strong (None: never)."""
        reached = self.cost_share[self.accuracy >= share_of_strong * self.strong - 1e-12]
        return None if len(reached) == 0 else float(reached.min())


def two_tier(score: np.ndarray, weak: np.ndarray, strong: np.ndarray, weak_cost: np.ndarray, strong_cost: np.ndarray) -> TwoTier:
    """The curve of a router ranking by `score` (higher = strong) over rows with both outcomes known."""
    n = len(score)
    if n == 0:
        raise ValueError("no rows with both models' outcomes to evaluate on")
    if np.isclose(weak.mean(), strong.mean()):
        raise ValueError("the two models have the same mean score: there is no gap to recover")
    accuracy = proportional_curve(score, weak, strong) / n
    cost = proportional_curve(score, weak_cost, strong_cost)
    total = float(np.sum(strong_cost))
    return TwoTier(accuracy, cost / total if total > 0 else np.arange(n + 1) / n, float(weak.mean()), float(strong.mean()))


@attrs.frozen
class MultiTier:
    """A family of policies' points, sorted by cost share, and the figures read off them."""

    cost_share: np.ndarray
    pgr: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    strongest_quality: float

    @property
    def apgr(self) -> float:
        return float(np.interp(GRID, self.cost_share, self.pgr).mean())

    def cost_to_reach(self, share_of_strongest: float) -> float | None:
        """Least cost, as a share of always-strongest cost, at quality ≥ share × strongest."""
        goal = share_of_strongest * self.strongest_quality
        ok = np.flatnonzero(self.quality >= goal - 1e-12)
        if len(ok) == 0:
            return None
        i = ok[0]
        if i == 0 or self.quality[i - 1] >= goal:
            return float(self.cost[i])
        q0, q1, c0, c1 = self.quality[i - 1], self.quality[i], self.cost[i - 1], self.cost[i]
        return float(c0 + (c1 - c0) * (goal - q0) / (q1 - q0))


def multi_tier(assignments: list[np.ndarray], scores: np.ndarray, costs: np.ndarray) -> MultiTier:
    """Points of the policies `assignments` (a tier index per row each) on a complete table."""
    rows = np.arange(len(scores))
    quality = np.array([scores[rows, a].mean() for a in assignments])
    spent = np.array([costs[rows, a].sum() for a in assignments])
    q0, q1 = scores[:, 0].mean(), scores[:, -1].mean()
    c0, c1 = costs[:, 0].sum(), costs[:, -1].sum()
    if np.isclose(q0, q1):
        raise ValueError("the cheapest and strongest models have the same mean score: there is no gap to recover")
    order = np.lexsort((-quality, spent))
    share = (spent[order] - c0) / (c1 - c0) if c1 > c0 else np.linspace(0, 1, len(order))
    return MultiTier(share, (quality[order] - q0) / (q1 - q0), quality[order], spent[order] / c1 if c1 > 0 else share, float(q1))


def sweep_predictions(predicted: np.ndarray, costs: np.ndarray) -> list[np.ndarray]:
    """Policies argmax(p − λ·cost) for λ from 0 to ∞, costs scaled to the strongest's mean."""
    scale = costs.mean(axis=0).max() or 1.0
    relative = costs / scale
    policies = []
    for value in LAMBDAS:
        policies.append(np.argmin(relative, axis=1) if np.isinf(value) else np.argmax(predicted - value * relative, axis=1))
    return policies


def ladder(score: np.ndarray, tiers: int, seed: int = 0, steps: int = 101) -> list[np.ndarray]:
    """Scalar-score policies from all-cheapest (t = 0) to all-strongest (t = 1), harder prompts higher."""
    n = len(score)
    shuffle = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((shuffle, score))
    quantile = np.empty(n)
    quantile[order] = np.arange(n) / max(n, 1)
    policies = []
    for t in np.linspace(0.0, 1.0, steps):
        position = np.clip(quantile + 2 * t - 1, 0.0, 1.0 - 1e-12)
        policies.append(np.floor(tiers * position).astype(int))
    return policies

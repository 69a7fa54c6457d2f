"""Routing by value: per request, the tier with the most predicted success for its price.

A learned router predicts P(success) of the request on each tier (cheapest first).
With `complexity_detection.value_lambda: λ`, the tier chosen maximises

    P(success on tier) − λ × expected cost on tier / expected cost on the dearest tier

the policy `orchestrator routing eval` measures as "learned, multi-tier". With
`value_lambda_paced`, λ is scaled per request by its generation's spending against
`budget.pacing` (`pacing_scale`): money running short raises it, money carried over
lowers it. The expected
cost is the request's own: its prompt's token estimate at the tier's input price and
half of the tier's `max_tokens` (the forecast's prior) at its output price, so a long
prompt weighs the price of input more. λ = 0 is "the most likely tier, whatever it
costs"; a large λ is "the cheapest"; λ = 1 trades the whole dearest-tier price for a
certain success. Ties go to the cheaper tier.

Without a learned model, P(success) comes from each tier's `quality` (the share of
typical requests it answers well: a leaderboard figure or your own measurement) moved
by the rule estimator's difficulty score: logit P = logit(quality) − SLOPE × (score −
0.5), so an easy request lifts every tier towards certain success (and the cheap one
wins on price) while a hard one spreads them apart (and the strong one is worth its
price). Where the online learner has feedback for a tier in the request's band, the
posterior takes over in proportion to its evidence (`OnlineLearner.posterior`, the
prior worth PRIOR_WEIGHT observations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from actors.money import token_cost_nd
from actors.policy.settings import RouterSettings
from actors.providers.settings import ProviderSettings

OUTPUT_SHARE_PPM = 500_000
"""An answer is expected to use half of its `max_tokens` (the forecast's documented prior)."""


DIFFICULTY_SLOPE = 4.0
"""Logit shift per unit of difficulty score: a score of 0 or 1 moves a 0.6 tier to 0.92 or 0.17."""
PRIOR_WEIGHT = 10.0
"""Pseudo-observations a quality prior is worth against the online learner's feedback."""


@attrs.frozen
class TierPrice:
    """What the value policy knows of one level's paid tier: its prices and, optionally, its quality."""

    input_nd_per_mtok: int
    output_nd_per_mtok: int
    max_tokens: int
    quality: float | None = None
    output_nd: int = attrs.field(init=False, eq=False, default=attrs.Factory(
        lambda self: token_cost_nd(self.max_tokens * OUTPUT_SHARE_PPM // 1_000_000, self.output_nd_per_mtok),
        takes_self=True))
    """The expected answer's cost, the same for every request (worked out once)."""

    def expected_nd(self, prompt_tokens: int) -> int:
        return token_cost_nd(prompt_tokens, self.input_nd_per_mtok) + self.output_nd


PACED_SCALE_BOUNDS = (0.25, 4.0)


def pacing_scale(share_left: float) -> float:
    """λ's multiplier when a generation has `share_left` of its allotment left (carry-over included).

    The inverse of the share left, bounded: with its whole allotment left λ is as
    configured; with a quarter left it is 4x (cheaper tiers stretch the money); with
    twice its allotment (earlier generations left money) it halves (a stronger tier is
    worth more of what would otherwise go unspent).
    """
    low, high = PACED_SCALE_BOUNDS
    return 1.0 / min(high, max(low, share_left))


def expected_costs(prices: Sequence[TierPrice], prompt_tokens: int) -> np.ndarray:
    return np.array([price.expected_nd(prompt_tokens) for price in prices], dtype=np.float64)


def values(probabilities: np.ndarray, costs: np.ndarray, value_lambda: float) -> np.ndarray:
    """Each tier's P(success) less λ times its cost relative to the dearest tier's."""
    dearest = float(costs.max())
    relative = costs / dearest if dearest > 0 else np.zeros_like(costs)
    return probabilities - value_lambda * relative


def choices(probabilities: np.ndarray, costs: np.ndarray, value_lambda: float) -> np.ndarray:
    """`by_value(...)[0]` for every row of (rows, tiers) predictions and costs at once (the evaluation's replay)."""
    dearest = costs.max(axis=1, keepdims=True)
    relative = np.divide(costs, dearest, out=np.zeros_like(costs, dtype=np.float64), where=dearest > 0)
    scored = probabilities - value_lambda * relative
    best = scored.max(axis=1, keepdims=True)
    cost_if_best = np.where(scored == best, costs, np.inf)
    return np.argmin(cost_if_best, axis=1)


def prior_probabilities(quality_logits: np.ndarray, score: float) -> np.ndarray:
    """P(success) per tier for a request of difficulty `score` in [0, 1], from the tiers' quality logits."""
    return 1.0 / (1.0 + np.exp(DIFFICULTY_SLOPE * (score - 0.5) - quality_logits))


def quality_logits(prices: Sequence[TierPrice]) -> np.ndarray:
    qualities = np.array([price.quality for price in prices], dtype=np.float64)
    clipped = np.clip(qualities, 1e-3, 1.0 - 1e-3)
    return np.log(clipped / (1.0 - clipped))


def by_value(probabilities: np.ndarray, costs: np.ndarray, value_lambda: float) -> list[int]:
    """Tier indices, best value first; equal values keep the cheaper tier first."""
    return ranked(values(probabilities, costs, value_lambda), costs)


def ranked(scored: np.ndarray, costs: np.ndarray) -> list[int]:
    """Tier indices by `values` already worked out, best first; equal values keep the cheaper tier first."""
    return np.lexsort((costs, -scored)).tolist()  # the last key sorts first; a stable sort keeps index order last


def prices_by_level(router: RouterSettings, providers: Mapping[str, ProviderSettings]) -> tuple[TierPrice, ...] | None:
    """Per level, lowest first, the price of the paid tier at that level (its first provider); None if a level has none."""
    prices = []
    for level in router.levels:
        tier = next((t for t in router.paid if t.level == level), None)
        if tier is None:
            return None
        provider = providers[tier.providers[0]]
        prices.append(TierPrice(provider.input_price_nd_per_mtok, provider.output_price_nd_per_mtok, tier.max_tokens,
                                tier.quality))
    return tuple(prices)


@attrs.frozen
class Calibrated:
    value_lambda: float
    accuracy: float
    best_accuracy: float
    cost_share: float
    """The policy's cost as a share of always sending to the dearest tier."""


def _calibrated(predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, value_lambda: float) -> Calibrated:
    """What routing by `value_lambda` on `predicted` would have scored and cost on the table."""
    best = float(scores.mean(axis=0).max())
    dearest = float(costs[:, int(np.argmax(costs.mean(axis=0)))].sum()) or 1.0
    picked = choices(predicted, costs, value_lambda)
    rows = np.arange(len(scores))
    return Calibrated(float(value_lambda), float(scores[rows, picked].mean()), best, float(costs[rows, picked].sum()) / dearest)


def lambda_for_quality(predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, quality: float,
                       lambdas: Sequence[float]) -> Calibrated:
    """The largest λ (the cheapest policy) whose choices keep `quality` of the best single tier's accuracy.

    `predicted` are P(success) the router would see (cross-validated), `scores` and
    `costs` what the table says each tier did and cost, rows by tiers.
    """
    chosen = _calibrated(predicted, scores, costs, 0.0)
    for value_lambda in sorted(lam for lam in lambdas if np.isfinite(lam)):
        outcome = _calibrated(predicted, scores, costs, value_lambda)
        if outcome.accuracy >= quality * outcome.best_accuracy:
            chosen = outcome
    return chosen


def lambda_for_cost(predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, cost_share: float,
                    lambdas: Sequence[float]) -> Calibrated | None:
    """The most accurate λ whose choices cost at most `cost_share` of always sending to the dearest tier.

    Ties go to the cheaper policy; None when even the cheapest λ tried costs more.
    """
    within = [outcome for outcome in (_calibrated(predicted, scores, costs, lam) for lam in lambdas if np.isfinite(lam))
              if outcome.cost_share <= cost_share]
    return max(within, key=lambda o: (o.accuracy, -o.cost_share), default=None)

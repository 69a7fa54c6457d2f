"""Settings of the router: tiers, the complexity estimator and the selection policy."""

from __future__ import annotations

import functools

import attrs

from actors.policy.online import OnlineSettings


@attrs.frozen
class TierSettings:
    """One model tier. `providers` lists provider names in order of preference."""

    name: str
    label: str
    level: str
    providers: tuple[str, ...]
    max_tokens: int
    temperature: float
    complexity_range: tuple[float, float] = (0.0, 1.0)
    local: bool = False
    escalation_only: bool = False
    quality: float | None = None
    """The share of typical requests this tier answers well; the value policy's prior without a learned model."""

    @functools.cached_property
    def entries(self) -> tuple[tuple[str, str], ...]:
        """(tier, provider) for each provider in order: a fallback chain is made of these, per request."""
        return tuple((self.name, provider) for provider in self.providers)


@attrs.frozen
class EstimatorSettings:
    """`kind` is "arc", "text", "auto", "learned" or "package.module:callable" for a custom estimator.

    `model_path` is the learned router's model file; with `target`, the learned router
    picks the cheapest tier whose predicted success reaches it instead of using thresholds.

    `thresholds` are (level, upper bound) pairs in ascending order: a score at or
    below a bound gets that level; a score above the last bound gets the last level.
    """

    kind: str
    weights: dict[str, float]
    thresholds: tuple[tuple[str, float], ...]
    model_path: str | None = None
    target: float | None = None
    value_lambda: float | None = None
    text_model_path: str | None = None
    """With the text or auto estimator: a learned model scores text prompts instead of the keyword rules
    (its gain score as a percentile of its training prompts; `LearnedTextEstimator`)."""
    text_model_scope: str = "plain"
    """Which text prompts the text model scores: "plain" (those without a coding signal; the rules keep the
    rest) or "all"."""
    value_lambda_paced: bool = False
    """Scale λ by how the request's generation spends against `budget.pacing` (`value.pacing_scale`)."""
    """Pick the tier maximising P(success) − λ × relative expected cost (`value.py`): P(success) from the
    learned model, or for a rule estimator from each tier's `quality` moved by the request's score."""


@attrs.frozen
class SelectionSettings:
    stagnation_threshold: int = 5
    budget_pressure_share: float | None = 0.2
    downgrade_on_budget: bool = True
    context_upgrade: bool = True
    fallback_strategy: str = "best_available"


@attrs.frozen
class Arm:
    """One arm of an A/B test: a name, the routing configuration it uses, its share of the traffic."""

    name: str
    estimator: EstimatorSettings
    weight: int = 1


@attrs.frozen
class Experiments:
    """`routing.experiments`: the arms, and the key that splits requests between them (`experiments.py`)."""

    split_by: str
    arms: tuple[Arm, ...]


@attrs.frozen
class RouterSettings:
    tiers: tuple[TierSettings, ...]
    estimator: EstimatorSettings
    selection: SelectionSettings = SelectionSettings()
    online: OnlineSettings = OnlineSettings()
    experiments: Experiments | None = None
    """A/B arms: each request routed by one arm's estimator (`experiments.py`)."""

    @functools.cached_property
    def levels(self) -> tuple[str, ...]:
        """The estimator's levels, lowest first (derived once: selection reads them for every request)."""
        return tuple(level for level, _ in self.estimator.thresholds)

    @functools.cached_property
    def paid(self) -> tuple[TierSettings, ...]:
        return tuple(tier for tier in self.tiers if not tier.local)

    @functools.cached_property
    def local(self) -> tuple[TierSettings, ...]:
        return tuple(tier for tier in self.tiers if tier.local)

    @functools.cached_property
    def tier_named(self) -> dict[str, TierSettings]:
        return {tier.name: tier for tier in self.tiers}

    @functools.cached_property
    def paid_by_level(self) -> dict[str, TierSettings]:
        """Each level's first paid tier (the one a ranking by value names for it)."""
        return {tier.level: tier for tier in reversed(self.paid)}

"""Settings of the router: tiers, the complexity estimator and the selection policy."""

from __future__ import annotations

import attrs


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


@attrs.frozen
class EstimatorSettings:
    """`kind` is "arc", "text", or "package.module:callable" for a custom estimator.

    `thresholds` are (level, upper bound) pairs in ascending order: a score at or
    below a bound gets that level; a score above the last bound gets the last level.
    """

    kind: str
    weights: dict[str, float]
    thresholds: tuple[tuple[str, float], ...]


@attrs.frozen
class SelectionSettings:
    stagnation_threshold: int = 5
    budget_pressure_share: float | None = 0.2
    downgrade_on_budget: bool = True
    context_upgrade: bool = True
    fallback_strategy: str = "best_available"


@attrs.frozen
class RouterSettings:
    tiers: tuple[TierSettings, ...]
    estimator: EstimatorSettings
    selection: SelectionSettings = SelectionSettings()

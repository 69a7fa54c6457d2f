"""Settings of the router: tiers, the complexity estimator and the selection policy."""

from __future__ import annotations

import attrs

from actors.router.online import OnlineSettings


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
    online: OnlineSettings = OnlineSettings()

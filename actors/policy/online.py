"""Routing that learns while a GA runs: Thompson sampling over (score band × tier).

The estimator's score is cut into `bands`; for each band and paid tier the learner
keeps a Beta posterior of "this tier's answer was good", fed by the caller's
feedback (a GA's fitness, a verifier's verdict, a user's score, each in [0, 1]).

Deciding a request: with probability `explore_share` (the exploration budget) the
learner draws a success probability for every tier from its posterior and takes the
cheapest tier whose draw reaches `target`. Otherwise it exploits what is known (a tier
is known after `min_observations`): a cheaper tier known to reach `target` is taken;
else the static choice stands unless it is known to fall short, in which case the
request moves up to the first tier not known to fall short. So routing is the
configured one until evidence accrues, the share of decisions spent exploring is
bounded, and a band where the cheap tier keeps failing moves up (or, where a cheaper
one keeps succeeding, down) on its own.

No I/O here: the router asks `choose`, the Orchestrator reports `observe` and saves
`snapshot()` with the state (`online.json`, owner-only).
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from actors.errors import ConfigError

SNAPSHOT_VERSION = 1
PENDING = 100_000
"""Requests remembered until their feedback arrives; older ones can no longer teach."""


@attrs.frozen
class OnlineSettings:
    enabled: bool = False
    bands: int = 5
    target: float = 0.7
    explore_share: float = 0.1
    min_observations: int = 5


@attrs.frozen
class Choice:
    tier: str
    band: int
    why: str
    explored: bool


@attrs.define
class _Arm:
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def observations(self) -> float:
        return self.alpha + self.beta - 2.0


class OnlineLearner:
    def __init__(self, settings: OnlineSettings, tiers: Sequence[str], seed: int | None = None) -> None:
        if settings.bands < 1 or not 0.0 < settings.target <= 1.0 or not 0.0 <= settings.explore_share <= 1.0:
            raise ConfigError(f"routing.online: bands ≥ 1, target in (0, 1], explore_share in [0, 1]; got {settings}")
        self.settings = settings
        self._tiers = tuple(tiers)
        self._rng = random.Random(seed)
        self._arms: dict[tuple[int, str], _Arm] = {}
        self._pending: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.explored = 0
        self.exploited = 0
        self.kept = 0
        self.observed = 0
        self.chosen: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<OnlineLearner arms={len(self._arms)} observed={self.observed} explored={self.explored}>"

    def band(self, score: float) -> int:
        return min(self.settings.bands - 1, max(0, int(score * self.settings.bands)))

    def choose(self, score: float, static_tier: str) -> Choice:
        """The tier for a request with this score; `static_tier` is what routing would do without learning."""
        band = self.band(score)
        if self._rng.random() < self.settings.explore_share:
            for tier in self._tiers:
                arm = self._arm(band, tier)
                if self._rng.betavariate(arm.alpha, arm.beta) >= self.settings.target:
                    return self._chose(Choice(tier, band, f"online: explored {tier} in band {band}", True))
            return self._chose(Choice(self._tiers[-1], band, f"online: explored {self._tiers[-1]} in band {band}", True))
        start = self._tiers.index(static_tier) if static_tier in self._tiers else 0
        for tier in self._tiers[:start]:
            if self._known(band, tier) and self._arm(band, tier).mean >= self.settings.target:
                return self._chose(Choice(tier, band, self._why(band, tier, "succeeds"), False))
        for tier in self._tiers[start:]:
            if not (self._known(band, tier) and self._arm(band, tier).mean < self.settings.target):
                if tier == static_tier:
                    return self._chose(Choice(tier, band, "", False))
                return self._chose(Choice(tier, band, self._why(band, static_tier, "fails"), False))
        return self._chose(Choice(self._tiers[-1], band, self._why(band, static_tier, "fails"), False))

    def posterior(self, band: int, prior: Sequence[float], prior_weight: float) -> tuple[list[float], bool]:
        """P(success) per tier for routing by value: the prior worth `prior_weight` observations, updated by feedback.

        The posterior mean, or with probability `explore_share` a draw from each tier's
        posterior (Thompson sampling), so a tier the prior undersells still gets tried
        and can earn its place. True in the second place when the answer was drawn.
        """
        explore = self._rng.random() < self.settings.explore_share
        out = []
        for tier, p in zip(self._tiers, prior):
            arm = self._arms.get((band, tier))
            good = arm.alpha - 1.0 if arm is not None else 0.0
            bad = arm.beta - 1.0 if arm is not None else 0.0
            alpha, beta = p * prior_weight + good, (1.0 - p) * prior_weight + bad
            out.append(self._rng.betavariate(max(alpha, 1e-6), max(beta, 1e-6)) if explore else alpha / (alpha + beta))
        if explore:
            self.explored += 1
        else:
            self.exploited += 1
        return out, explore

    def _known(self, band: int, tier: str) -> bool:
        return self._arm(band, tier).observations >= self.settings.min_observations

    def _why(self, band: int, tier: str, verb: str) -> str:
        arm = self._arm(band, tier)
        return f"online: {tier} {verb} ({arm.mean:.0%} good in band {band}, {arm.observations:.0f} observations)"

    def answered(self, request_id: str, band: int, tier: str) -> None:
        """Remember which arm a request's answer came from, until its feedback arrives."""
        if tier not in self._tiers:
            return
        self._pending[request_id] = (band, tier)
        if len(self._pending) > PENDING:
            self._pending.popitem(last=False)

    def observe(self, request_id: str, score: float) -> bool:
        """Credit the arm that answered `request_id`; False when the request is unknown or forgotten."""
        arm_key = self._pending.pop(request_id, None)
        if arm_key is None:
            return False
        good = min(1.0, max(0.0, score))
        arm = self._arm(*arm_key)
        arm.alpha += good
        arm.beta += 1.0 - good
        self.observed += 1
        return True

    def statistics(self) -> dict[str, Any]:
        return {
            "bands": self.settings.bands,
            "target": self.settings.target,
            "observed": self.observed,
            "explored": self.explored,
            "exploited": self.exploited,
            "static": self.kept,
            "chosen": dict(self.chosen),
            "arms": {
                f"{band}:{tier}": {"mean": round(arm.mean, 4), "observations": round(arm.observations, 2)}
                for (band, tier), arm in sorted(self._arms.items())
            },
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "tiers": list(self._tiers),
            "bands": self.settings.bands,
            "arms": [[band, tier, arm.alpha, arm.beta] for (band, tier), arm in sorted(self._arms.items())],
        }

    def restore(self, snapshot: Mapping[str, Any], where: str) -> None:
        """Load a saved posterior; a file from another tier or band layout is refused, not mixed in."""
        if snapshot.get("version") != SNAPSHOT_VERSION or snapshot.get("bands") != self.settings.bands:
            raise ConfigError(f"{where}: saved for another layout (version/bands differ); move it aside to start afresh")
        for entry in snapshot.get("arms", []):
            if not (isinstance(entry, list) and len(entry) == 4):
                raise ConfigError(f"{where}: malformed arm {entry!r:.60}")
            band, tier, alpha, beta = entry
            if tier in self._tiers and isinstance(band, int) and 0 <= band < self.settings.bands:
                self._arms[(band, tier)] = _Arm(float(alpha), float(beta))

    def _arm(self, band: int, tier: str) -> _Arm:
        arm = self._arms.get((band, tier))
        if arm is None:
            arm = self._arms[(band, tier)] = _Arm()
        return arm

    def _chose(self, choice: Choice) -> Choice:
        if choice.explored:
            self.explored += 1
        elif choice.why:
            self.exploited += 1
        else:
            self.kept += 1
        self.chosen[choice.tier] += 1
        return choice

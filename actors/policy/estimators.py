"""Complexity estimators: a request in, an Estimate (score, level, confidence, reasons) out.

The score is in [0, 1]. The level comes from the configured thresholds, ascending
(level, upper bound) pairs: a score at or below a bound gets that level, above the
last bound the last level. Confidence says how safely inside its level a score is:
1.0 at the middle of the level's band, 0.5 on a threshold (where a small change of
features would route elsewhere).

A request may bring its own `score` (used as is) or `features` (weighted like
computed ones). `kind` "arc", "text", "auto" (ARC for requests with a task, text
otherwise), "learned" (a model fitted on outcome data, see `learned.py`) or
"package.module:callable" (a function taking a Request and returning an Estimate, or
a score).

The level is always chosen on the score the estimate reports (rounded to six
decimals), so thresholds calibrated on reported scores route exactly as calibrated.

Default ARC weights come from measurement, not from the story: separating the harder
ARC evaluation sets from the training sets, grid size alone has AUC 0.82 (ARC-AGI-2)
and 0.65 (ARC-AGI-1), pattern complexity 0.64/0.53, colour diversity 0.70/0.54 and
transformation hints 0.50/0.50 (none). The story's 0.3/0.3/0.2/0.2 mix dilutes grid
size to 0.79/0.62; 0.7/0.2/0.1/0 gives 0.83/0.66 and, through pattern complexity,
nearly all-distinct scores, so calibration reaches any mix (docs/ROUTING.md).
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import numpy as np

from actors.errors import ConfigError
from actors.ledger.pricing import prompt_token_estimate
from actors.memo import ContentMemo
from actors.messages import Estimate, Request
from actors.policy import learned
from actors.policy.arc_features import FEATURES, arc_features
from actors.policy.online import OnlineLearner
from actors.policy.prompts import request_messages
from actors.policy.settings import EstimatorSettings
from actors.policy.text_features import coding_signal, rule_points, text_points
from actors.policy.value import PRIOR_WEIGHT, TierPrice, expected_costs, prior_probabilities, quality_logits, ranked, values

DEFAULT_ARC_WEIGHTS = {"grid_size_score": 0.7, "pattern_complexity": 0.2, "color_diversity": 0.1, "transformation_hints": 0.0}
SCORE_DECIMALS = 6
MEMO_KEY_CHARS = 4096
"""Prompts up to this long key the estimators' memos by their text; longer ones by length and hash."""
VALUE_REASON_RUNNERS_UP = 2
"""Tiers after the best that a value decision's reason names (every tier's P(success) is in its features)."""


LambdaScale = Callable[[Request], float]
"""λ's multiplier for one request (the router's pacing: `value.pacing_scale`)."""


class Estimator(Protocol):
    def estimate(self, request: Request) -> Estimate: ...


class Levels:
    """Maps a score to a level and a confidence, from ascending thresholds."""

    def __init__(self, thresholds: tuple[tuple[str, float], ...]) -> None:
        scale = max(bound for _, bound in thresholds)
        self.scale = 100.0 if scale > 1.0 else 1.0
        self.names = tuple(level for level, _ in thresholds)
        self.bounds = tuple(bound / self.scale for _, bound in thresholds)

    def level(self, score: float) -> tuple[str, float]:
        low = 0.0
        for name, high in zip(self.names, self.bounds):
            if score <= high:
                return name, _confidence(score, low, high)
            low = high
        return self.names[-1], _confidence(score, self.bounds[-1], 1.0)


def _confidence(score: float, low: float, high: float) -> float:
    band = high - low
    if band <= 0:
        return 1.0
    distance = max(0.0, min(score - low, high - score))
    return round(0.5 + 0.5 * min(1.0, 2 * distance / band), 4)


def _weighted(features: dict[str, float], weights: dict[str, float]) -> tuple[float, list[str]]:
    total_weight = sum(weights.get(name, 0.0) for name in features) or 1.0
    contributions = {
        name: value * weights.get(name, 0.0) / total_weight for name, value in features.items() if weights.get(name)
    }
    score = min(1.0, max(0.0, sum(contributions.values())))
    ranked = sorted(contributions.items(), key=lambda item: item[1], reverse=True)
    reasons = [f"{name} {features[name]:.2f} (weight {weights[name]:g})" for name, _ in ranked[:2] if contributions[name] > 0]
    return score, reasons


class ArcEstimator:
    """The story's four weighted grid features; estimates are memoised per task content."""

    def __init__(self, settings: EstimatorSettings, memo_size: int = 4096) -> None:
        self.weights = {k: v for k, v in (settings.weights or DEFAULT_ARC_WEIGHTS).items() if k in FEATURES} or DEFAULT_ARC_WEIGHTS
        self._computed = tuple(name for name in FEATURES if self.weights.get(name))
        self.levels = Levels(settings.thresholds)
        self._memo: ContentMemo[Estimate] = ContentMemo(memo_size)

    def estimate(self, request: Request) -> Estimate:
        if request.score is not None:
            return self._from_score(request.score, ["score given by the caller"])
        if request.features:
            score, reasons = _weighted(request.features, self.weights)
            return self._finish(score, reasons, dict(request.features))
        if request.task is None:
            raise ConfigError("the ARC estimator needs requests with an ARC task (use estimator: auto)")
        cached = self._memo.get(request.task)
        if cached is not None:
            return cached
        features = arc_features(request.task, self._computed)
        score, reasons = _weighted(features, self.weights)
        estimate = self._finish(score, reasons, features)
        self._memo.put(request.task, estimate)
        return estimate

    def _from_score(self, score: float, reasons: list[str]) -> Estimate:
        return self._finish(min(1.0, max(0.0, score)), reasons, {})

    def _finish(self, score: float, reasons: list[str], features: dict[str, float]) -> Estimate:
        score = round(score, SCORE_DECIMALS)
        level, confidence = self.levels.level(score)
        return Estimate(score, level, confidence, tuple(reasons), features)


def prompt_key(text: str) -> object:
    """A prompt's memo key: the text itself up to MEMO_KEY_CHARS, else its length and hash, so a memo holds
    no long texts (two long prompts alike in both would share an entry: about 1 in 10^15 lookups)."""
    return text if len(text) <= MEMO_KEY_CHARS else (len(text), hash(text))


def success_names(tiers: Sequence[str]) -> tuple[str, ...]:
    """The features `success_features` reports for these tiers; an estimator makes them once, not per decision."""
    return tuple(f"p_success:{tier}" for tier in tiers)


def success_features(names: tuple[str, ...], probabilities: Sequence[float]) -> dict[str, float]:
    """`p_success:<tier>` per tier (`success_names`), to four places: what a verifier cascade and the reasons'
    readers use."""
    return dict(zip(names, [round(p, 4) for p in probabilities]))


class TextEstimator:
    """The coding-router source's points, scaled to [0, 1]; the top level needs a critical pattern.

    Estimates are memoised per prompt (`prompt_key`) and file count: the samples of one
    prompt, a retried request and a GA's repeated asks are scored once.
    """

    def __init__(self, settings: EstimatorSettings, memo_size: int = 4096) -> None:
        self.levels = Levels(settings.thresholds)
        self._memo: OrderedDict[tuple[object, int | None], Estimate] = OrderedDict()
        self._memo_size = memo_size

    def estimate(self, request: Request) -> Estimate:
        if request.score is not None:
            score = min(1.0, max(0.0, request.score / 100 if request.score > 1 else request.score))
            level, confidence = self.levels.level(score)
            return Estimate(score, level, confidence, ("score given by the caller",), {})
        text = "\n".join(m.content for m in request.messages if m.role != "system")
        files = int(request.metadata["files"]) if request.metadata.get("files", "").isdigit() else None
        if request.features:
            return self._estimate(text, files, request.features)
        key = (prompt_key(text), files)
        memo = self._memo
        estimate = memo.get(key)
        if estimate is not None:
            memo.move_to_end(key)
            return estimate
        estimate = memo[key] = self._estimate(text, files, None)
        if len(memo) > self._memo_size:
            memo.popitem(last=False)
        return estimate

    def _estimate(self, text: str, files: int | None, given: dict[str, float] | None) -> Estimate:
        return self._by_rules(text, given, *text_points(text, files=files))

    def _by_rules(self, text: str, given: dict[str, float] | None, points: int, critical: bool,
                  features: dict[str, float], reasons: list[str]) -> Estimate:
        if given:
            features = {**features, **given}
        score = round(continuous_score(points, len(text)), SCORE_DECIMALS)
        level, confidence = self.levels.level(score)
        if level == self.levels.names[-1] and not critical and len(self.levels.names) > 1:
            level = self.levels.names[-2]
            reasons.append(f"no critical pattern: capped at {level}")
            confidence = 1.0
        return Estimate(score, level, confidence, tuple(reasons), features)


class LearnedTextEstimator(TextEstimator):
    """Text prompts scored by a learned model (`text_model`) instead of the keyword rules; memo and given scores as the rules'.

    The score ranks the prompt among the model's training prompts by the mean of two
    percentiles, its expected gain (strong over weak) and its length, so the configured
    thresholds cut by share: with 0.3 for the first level, the 30% ranked lowest go
    there. The blend is what held up leave-one-domain-out: the model alone lost to
    prompt length on a domain it never saw (docs/ROUTING.md).

    With `text_model_scope: plain` (the default) the keyword rules keep the prompts
    they were written for, those with a coding signal (`coding_signal`): the shipped
    model never saw a coding task, and put every one of 60 above 95% of its training
    prompts, on the dearest tier; on plain text the rules can only rank by length.
    """

    def __init__(self, settings: EstimatorSettings, memo_size: int = 4096) -> None:
        super().__init__(settings, memo_size)
        assert settings.text_model_path is not None
        self.model = learned.load(settings.text_model_path)
        self.source = Path(settings.text_model_path).name
        self.plain_only = settings.text_model_scope == "plain"
        self._success_names = success_names(self.model.models)

    def _estimate(self, text: str, files: int | None, given: dict[str, float] | None) -> Estimate:
        if self.plain_only:
            points, critical, features, reasons, counted = rule_points(text, files=files)
            signal = coding_signal(text, features, counted)
            if signal:
                ruled = self._by_rules(text, given, points, critical, features, reasons)
                return attrs.evolve(ruled, reasons=(
                    *ruled.reasons, f"coding signal ({signal}): routed by the keyword rules, not {self.source}"))
        probabilities = self.model.predict_text(text).tolist()
        score = round(self.model.blended_percentile(learned.gain(probabilities[0], probabilities[-1]), len(text)),
                      SCORE_DECIMALS)
        level, confidence = self.levels.level(score)
        features = success_features(self._success_names, probabilities)
        reasons = (f"learned text router ({self.source}): P(success) weakest {probabilities[0]:.2f}, strongest "
                   f"{probabilities[-1]:.2f}; with its length, above {score:.0%} of its training prompts",)
        return Estimate(score, level, confidence, reasons, features | (given or {}))


def text_estimator(settings: EstimatorSettings) -> TextEstimator:
    """The keyword rules, or the learned text model when the configuration names one."""
    return LearnedTextEstimator(settings) if settings.text_model_path else TextEstimator(settings)


def continuous_score(points: int, chars: int) -> float:
    """Points to a score that breaks ties by length, never across a multiple of 5 points.

    The rules give points in steps of 5, so most prompts of a workload share a score and
    no threshold can split them (1,283 of 1,319 GSM8K prompts scored exactly 0.10). A
    prompt of p points now scores in ((p - 5) / 100, p / 100], higher when longer (the
    one text signal measured to beat chance on its own), so thresholds at multiples of 5
    points route as before and calibration can split a band.
    """
    return (points - 4.99 * (1000.0 / (chars + 1000.0))) / 100.0


class LearnedEstimator:
    """A fitted outcome model (`learned.py`): scores by expected gain, or levels by a success target.

    Predictions for task-only requests are memoised per task, as the ARC estimator's are:
    a GA asks about the same tasks over and over, and rendering a task costs more than
    the model.
    """

    def __init__(self, settings: EstimatorSettings, memo_size: int = 4096,
                 prices: Sequence[TierPrice] | None = None, learner: OnlineLearner | None = None,
                 lambda_scale: LambdaScale | None = None) -> None:
        self._memo: ContentMemo[np.ndarray] = ContentMemo(memo_size)
        self._text_memo: ContentMemo[np.ndarray] = ContentMemo(memo_size)
        if not settings.model_path:
            raise ConfigError("complexity_detection.estimator: learned needs model_path (orchestrator routing fit)")
        self.model = learned.load(settings.model_path)
        self._success_names = success_names(self.model.models)
        self._reason_format = "learned P(success) " + ", ".join(f"{m.replace('%', '%%')} %.2f" for m in self.model.models)
        """The reason's text with a place per model: one %-format of a decision's floats, not eleven f-strings."""
        self.levels = Levels(settings.thresholds)
        self.target = settings.target
        policy = "target" if self.target is not None else "value_lambda" if settings.value_lambda is not None else ""
        if policy and len(self.model.models) != len(self.levels.names):
            raise ConfigError(
                f"complexity_detection: {policy} needs one level per model of {settings.model_path}: "
                f"it has {len(self.model.models)} models ({', '.join(self.model.models)}), "
                f"the thresholds {len(self.levels.names)} levels"
            )
        self.value = (ValuePolicy(settings, prices, learner, lambda_scale, memo_size)
                      if settings.value_lambda is not None else None)

    def predict(self, request: Request) -> np.ndarray:
        """P(success) per tier of the model, cheapest first: what an online learner starts from.

        Memoised per task, and per prompt for text alone (keyed as the text rules' memo
        is): a GA asks for several samples of one prompt, and a retry asks again.
        """
        if request.task is None:
            text = learned.request_text(request)
            key = prompt_key(text)
            cached = self._text_memo.get(key)
            if cached is None:
                cached = self.model.predict_text(text)
                self._text_memo.put(key, cached)
            return cached
        if request.messages:
            return self.model.predict_text(learned.request_text(request), request.task)
        cached = self._memo.get(request.task)
        if cached is None:
            cached = self.model.predict_text(learned.request_text(request), request.task)
            self._memo.put(request.task, cached)
        return cached

    def feature_band(self, request: Request) -> int:
        """Which quartile of the training scores the request falls in (0 = least to gain)."""
        return self.model.band(self.estimate(request).score)

    def estimate(self, request: Request) -> Estimate:
        if request.score is not None:
            score = min(1.0, max(0.0, request.score))
            level, confidence = self.levels.level(score)
            return Estimate(score, level, confidence, ("score given by the caller",), {})
        probabilities = self.predict(request)
        listed = probabilities.tolist()
        score = round(learned.gain(listed[0], listed[-1]), SCORE_DECIMALS)
        features = success_features(self._success_names, listed)
        reasons = [self._reason_format % tuple(listed)]
        if self.value is not None:
            return self.value.estimate(request, score, self.levels.names, self.model.models, probabilities, reasons,
                                       features)
        if self.target is None:
            level, confidence = self.levels.level(score)
            return Estimate(score, level, confidence, tuple(reasons), features)
        clearing = np.flatnonzero(probabilities >= self.target)
        index = int(clearing[0]) if len(clearing) else int(np.argmax(probabilities))
        reasons.append(
            f"cheapest tier reaching {self.target:.2f}: {self.model.models[index]}" if len(clearing)
            else f"no tier reaches {self.target:.2f}: the most likely, {self.model.models[index]}"
        )
        confidence = round(float(min(1.0, 0.5 + abs(probabilities[index] - self.target))), 4)
        return Estimate(score, self.levels.names[index], confidence, tuple(reasons), features)


class ValuePolicy:
    """Routing by value's half that both value estimators share: the tiers' prices, λ (scaled per request when
    paced), the online learner's posterior, and each request's expected cost per tier.

    Expected costs are memoised per ARC task, as the estimates are: a task-only request
    would otherwise render the task's prompt again on every decision only to count its
    tokens.
    """

    def __init__(self, settings: EstimatorSettings, prices: Sequence[TierPrice] | None, learner: OnlineLearner | None,
                 lambda_scale: LambdaScale | None, memo_size: int = 4096) -> None:
        assert settings.value_lambda is not None
        if prices is None or len(prices) != len(settings.thresholds):
            raise ConfigError("complexity_detection: value_lambda needs the price of one paid tier per level")
        self.value_lambda = settings.value_lambda
        self.prices = tuple(prices)
        self.learner = learner
        self.lambda_scale = lambda_scale
        self._costs: ContentMemo[np.ndarray] = ContentMemo(memo_size)

    def costs(self, request: Request) -> np.ndarray:
        """Each tier's expected cost for the request: its prompt at the tier's prices, and the expected answer."""
        if request.task is None or request.messages:
            return expected_costs(self.prices, prompt_token_estimate(request.messages))
        cached = self._costs.get(request.task)
        if cached is None:
            cached = expected_costs(self.prices, prompt_token_estimate(request_messages(request)))
            self._costs.put(request.task, cached)
        return cached

    def estimate(self, request: Request, score: float, levels: Sequence[str], tiers: Sequence[str],
                 probabilities: np.ndarray, reasons: list[str], features: dict[str, float]) -> Estimate:
        """The level of most predicted success for its price (`value.py`), every level ranked; the runner-up sets
        the confidence.

        With an online learner the prediction is its prior, updated by the feedback of the
        request's score band (and now and then drawn, to explore).
        """
        value_lambda = self.value_lambda * (self.lambda_scale(request) if self.lambda_scale is not None else 1.0)
        if self.learner is not None:
            band = self.learner.band(score)
            posterior, explored = self.learner.posterior(band, probabilities.tolist(), PRIOR_WEIGHT)
            probabilities = np.asarray(posterior)
            reasons.append(f"online: {'drew' if explored else 'posterior of'} band {band} "
                           + ", ".join(f"{t} {p:.2f}" for t, p in zip(tiers, posterior)))
        costs = self.costs(request)
        scored = values(probabilities, costs, value_lambda)
        order = ranked(scored, costs)
        best, by_tier = order[0], scored.tolist()
        margin = by_tier[best] - by_tier[order[1]] if len(order) > 1 else 1.0
        reasons.append(f"value (λ {value_lambda:g}): {tiers[best]} {by_tier[best]:+.2f}"
                       + "".join(f", then {tiers[i]} {by_tier[i]:+.2f}" for i in order[1:VALUE_REASON_RUNNERS_UP + 1]))
        return Estimate(score, levels[best], round(min(1.0, 0.5 + margin), 4), tuple(reasons), features,
                        tuple(map(levels.__getitem__, order)))


class PriorValueEstimator:
    """Routing by value without a learned model: P(success) from each tier's `quality` and the rules' score.

    The rule estimator (ARC, text or auto) says how hard the request is; `value.py`
    turns each level's tier quality into P(success) at that difficulty; the tier of
    most success for its price is chosen and every level ranked for the fallback chain.
    """

    def __init__(self, rules: Estimator, settings: EstimatorSettings, prices: Sequence[TierPrice] | None,
                 learner: OnlineLearner | None, lambda_scale: LambdaScale | None = None) -> None:
        self.rules = rules
        self.levels = Levels(settings.thresholds)
        self.value = ValuePolicy(settings, prices, learner, lambda_scale)
        unrated = [name for name, price in zip(self.levels.names, self.value.prices) if price.quality is None]
        if unrated:
            raise ConfigError(
                "complexity_detection: value_lambda with the rule estimator needs `quality` (0-1) on the paid tier of "
                f"every level; missing for level(s) {', '.join(unrated)} (or use estimator: learned)"
            )
        self._logits = quality_logits(self.value.prices)
        self._success_names = success_names(self.levels.names)

    def estimate(self, request: Request) -> Estimate:
        rules = self.rules.estimate(request)
        probabilities = prior_probabilities(self._logits, rules.score)
        names = self.levels.names
        features = dict(rules.features) | success_features(self._success_names, probabilities.tolist())
        reasons = list(rules.reasons) + [f"quality prior at score {rules.score:.2f} (p_success: features per tier)"]
        return self.value.estimate(request, rules.score, names, names, probabilities, reasons, features)


class AutoEstimator:
    """ARC features for requests that carry a task, the text rules for the rest."""

    def __init__(self, settings: EstimatorSettings) -> None:
        self.arc = ArcEstimator(settings)
        self.text = text_estimator(settings)

    def estimate(self, request: Request) -> Estimate:
        if request.task is not None or (request.features and set(request.features) <= set(FEATURES)):
            return self.arc.estimate(request)
        return self.text.estimate(request)


class CallableEstimator:
    """A user's function, registered by its import path in the configuration."""

    def __init__(self, function: Callable[[Request], Estimate | float], settings: EstimatorSettings) -> None:
        self.function = function
        self.levels = Levels(settings.thresholds)

    def estimate(self, request: Request) -> Estimate:
        answer = self.function(request)
        if isinstance(answer, Estimate):
            return answer
        score = min(1.0, max(0.0, float(answer)))
        level, confidence = self.levels.level(score)
        return Estimate(score, level, confidence, (f"custom estimator {getattr(self.function, '__name__', '?')}",), {})


RULE_ESTIMATORS = (ArcEstimator, TextEstimator, AutoEstimator, PriorValueEstimator)
"""Estimators whose score only chooses a tier: a request pinned to one needs none."""


def build_estimator(settings: EstimatorSettings, prices: Sequence[TierPrice] | None = None,
                    learner: OnlineLearner | None = None, lambda_scale: LambdaScale | None = None) -> Estimator:
    """`prices`: the paid tiers' prices (and qualities), one per level, cheapest first (routing by value needs them).

    `learner`: the online learner whose feedback updates routing by value's predictions.
    `lambda_scale`: λ's multiplier for a request (the router's pacing), for `value_lambda_paced`.
    """
    if settings.kind in ("arc", "text", "auto"):
        rules = {"arc": ArcEstimator, "text": text_estimator, "auto": AutoEstimator}[settings.kind](settings)
        if settings.value_lambda is None:
            return rules
        return PriorValueEstimator(rules, settings, prices, learner, lambda_scale)
    if settings.kind == "learned":
        return LearnedEstimator(settings, prices=prices, learner=learner, lambda_scale=lambda_scale)
    module_name, _, attribute = settings.kind.partition(":")
    if not attribute:
        raise ConfigError(
            f"complexity_detection.estimator: {settings.kind!r} is not arc, text, auto, learned or package.module:callable"
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"complexity_detection.estimator: cannot load {settings.kind!r}: {exc}") from None
    if not callable(function):
        raise ConfigError(f"complexity_detection.estimator: {settings.kind!r} is not callable")
    return CallableEstimator(function, settings)

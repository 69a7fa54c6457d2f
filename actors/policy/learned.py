"""The learned router: P(success | prompt features, tier), fitted on an outcome table.

One L2-regularised logistic regression per model of the table (cheapest first), on
the features of `prompt_features`, fitted with full-batch Adam in numpy. Each model
learns from the rows where it was observed, so a sparse history (one model per
prompt) trains every tier it used.

The estimate's score is the expected gain of the strongest tier over the cheapest,
(1 + P(strongest) - P(cheapest)) / 2, in [0, 1]: 0.5 means "the expensive tier is not
expected to do better". It is continuous, so the configured thresholds (or
`calibrate`) split a workload at any mix. With a `target`, the level is instead that
of the cheapest tier whose predicted success clears it (the best predicted tier when
none does), tier i of the model standing for level i of the configuration.

The file is an `.npz` of plain arrays plus a JSON header (no pickled objects), read
with `allow_pickle=False`. What an online learner needs is exposed per request:
`predict(request)` (success per tier) and `feature_band(request)` (which quantile band
of training scores it falls in).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Protocol, TypeVar

import attrs
import numpy as np
import orjson

from actors.errors import ConfigError
from actors.fileio import replace_durably
from actors.messages import ArcTask, Request
from actors.policy.arc_features import FEATURES as ARC_FEATURES
from actors.policy.prompt_features import (
    DENSE,
    FeatureBatch,
    FeatureSpec,
    counted_buckets,
    damped,
    dense_features,
    featurize,
    l2_norm,
)
from actors.policy.prompts import request_messages

DENSE_FIT_CELLS = 1 << 24
"""Rows x buckets up to which a fit lays the features out densely (64 MiB of float32) and fits all models at once."""
FORMAT = "orchestrator-learned-router"
VERSION = 1
BANDS = 4
_PERCENTILES = np.linspace(0.0, 1.0, 101)
"""0, 0.01, ..., 1: where each of a model's 101 quantiles sits (read-only)."""
_PERCENTILES.flags.writeable = False


@attrs.frozen
class FitSettings:
    """Regularisation and optimisation; the defaults are the ones measured in docs/ROUTING.md."""

    l2: float = 3.0
    iterations: int = 300
    learning_rate: float = 0.05
    dense_weight: float = 0.3
    spec: FeatureSpec = FeatureSpec()


@attrs.frozen(eq=False)
class LearnedModel:
    models: tuple[str, ...]
    spec: FeatureSpec
    weights: np.ndarray
    dense_weights: np.ndarray
    bias: np.ndarray
    dense_mean: np.ndarray
    dense_scale: np.ndarray
    band_edges: np.ndarray
    costs_nd: tuple[float, ...] = ()
    trained_rows: int = 0
    source: str = ""
    score_quantiles: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    """The training prompts' gain scores at each percentile 0..100 (empty in files written before they were kept)."""
    length_quantiles: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    """The training prompts' lengths in characters at each percentile 0..100."""
    blend_quantiles: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    """The training prompts' blended scores (mean of gain and length percentiles) at each percentile 0..100."""
    dense_low: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    """Each dense feature's least value in training, less the range's width (empty in files written before it was
    kept: those are read without bounds)."""
    dense_high: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    """Each dense feature's greatest value in training, plus the same width.

    A prompt's dense features are held to [dense_low, dense_high] before they meet the
    weights: a linear model extrapolates without bound, so a prompt twice as long as any
    it was trained on (a feature with little spread in training, standardised into tens of
    its deviations) would otherwise push every logit to its limit and every P(success) to 0
    or 1, and routing by value would see no difference between tiers. Widened, because
    the plain range cost a domain the fit never saw some of its ranking (docs/ROUTING.md).
    """

    uses_grids: bool = attrs.field(init=False, eq=False, default=attrs.Factory(
        lambda self: bool(np.any(self.dense_scale[DENSE.index(ARC_FEATURES[0]):] != 0)), takes_self=True))
    """Whether ARC grid features carry weight: a model fitted on text alone skips computing them."""
    dense_matrix: np.ndarray = attrs.field(init=False, eq=False, repr=False, default=attrs.Factory(
        lambda self: self.dense_weights.astype(np.float64) * self.dense_scale, takes_self=True))
    """The dense weights with the standardisation folded in (float64, so folding adds no rounding of note): one
    prompt's dense logits are `dense_matrix @ held + dense_offset`, two array operations fewer per decision."""
    dense_offset: np.ndarray = attrs.field(init=False, eq=False, repr=False, default=attrs.Factory(
        lambda self: self.bias - self.dense_matrix @ self.dense_mean, takes_self=True))

    def predict_text(self, text: str, task: ArcTask | None = None) -> np.ndarray:
        """P(success) per model, cheapest first."""
        raw = dense_features(text, task if self.uses_grids else None, self.spec.max_chars)
        logits = self.dense_matrix @ self._held(raw) + self.dense_offset
        counts, counted = counted_buckets(text, self.spec)
        if counts is not None:
            values = damped(counts, counted)
            logits += (self.weights @ values) / l2_norm(values)
        return _sigmoid(logits)

    def predict_batch(self, batch: FeatureBatch) -> np.ndarray:
        """(rows, models) P(success)."""
        batch = attrs.evolve(batch, dense=self._held(batch.dense))
        return _sigmoid(_logits(batch, self.weights, self.dense_weights, self.bias, self.dense_mean, self.dense_scale))

    def _held(self, dense: np.ndarray) -> np.ndarray:
        """`dense` (one prompt's or a batch's) held to [dense_low, dense_high]; as it is for a file without bounds."""
        if not len(self.dense_low):
            return dense
        return np.minimum(np.maximum(dense, self.dense_low), self.dense_high)

    def band(self, score: float) -> int:
        return int(np.searchsorted(self.band_edges, score, side="right"))

    def percentile(self, gain: float) -> float:
        """The share of training prompts with less to gain than `gain`: a score whose thresholds cut a workload
        like the training one by share (0.3 puts the 30% with least to gain at the first level)."""
        return _percentile(gain, self.score_quantiles)

    def blended_percentile(self, gain: float, chars: int) -> float:
        """The percentile among training prompts of the mean of the gain's and the length's percentiles.

        Prompt length is the one signal measured to carry across domains; ranking by
        both holds up on a domain the model never saw where the model alone may not
        (docs/ROUTING.md, leave one domain out).
        """
        if len(self.blend_quantiles) < 2 or len(self.length_quantiles) < 2:
            return self.percentile(gain)
        blended = (_percentile(gain, self.score_quantiles) + _percentile(chars, self.length_quantiles)) / 2
        return _percentile(blended, self.blend_quantiles)


def _percentile(value: float, quantiles: np.ndarray) -> float:
    if len(quantiles) < 2:
        return value
    return float(np.interp(value, quantiles, _PERCENTILES))


_Probability = TypeVar("_Probability", float, np.ndarray)


def gain_score(probabilities: np.ndarray) -> np.ndarray | float:
    """(1 + P(strongest) - P(cheapest)) / 2: the score estimates and replays rank by."""
    return gain(probabilities[..., 0], probabilities[..., -1])


def gain(cheapest: _Probability, strongest: _Probability) -> _Probability:
    """`gain_score` of one prompt's P(success) on its cheapest and strongest model, as Python floats or arrays alike
    (one decision works in floats: numpy's scalar arithmetic costs microseconds)."""
    return (1.0 + strongest - cheapest) / 2.0


def request_text(request: Request) -> str:
    messages = request_messages(request)
    return "\n".join(m.content for m in messages if m.role != "system")


class Outcomes(Protocol):
    """What a fit reads from an outcome table; the lab's `OutcomeTable` is one.

    A protocol, so the policy stays importable without the offline lab that reads tables.
    """

    prompts: tuple[str, ...]
    models: tuple[str, ...]
    scores: np.ndarray
    costs_nd: np.ndarray
    source: str

    def __len__(self) -> int: ...

    @property
    def has_costs(self) -> bool: ...


def table_features(table: Outcomes, spec: FeatureSpec) -> FeatureBatch:
    return featurize(list(table.prompts), spec)


def fit(table: Outcomes, settings: FitSettings = FitSettings(), batch: FeatureBatch | None = None) -> LearnedModel:
    """Fit one logistic regression per model of `table` (on `batch`, its rows' features, if given)."""
    batch = batch if batch is not None else table_features(table, settings.spec)
    dense_mean = batch.dense.mean(axis=0)
    spread = batch.dense.std(axis=0)
    dense_scale = np.where(spread > 1e-6, settings.dense_weight / np.maximum(spread, 1e-6), 0.0)
    buckets = settings.spec.buckets
    if len(batch) * buckets <= DENSE_FIT_CELLS:
        weights, dense_weights, bias = _fit_all(batch, table.scores, dense_mean, dense_scale, settings)
    else:
        weights = np.zeros((len(table.models), buckets), dtype=np.float32)
        dense_weights = np.zeros((len(table.models), len(DENSE)), dtype=np.float32)
        bias = np.zeros(len(table.models), dtype=np.float32)
        for j in range(len(table.models)):
            observed = np.flatnonzero(~np.isnan(table.scores[:, j]))
            if len(observed) == 0:
                continue
            part = batch.subset(observed) if len(observed) < len(table) else batch
            weights[j], dense_weights[j], bias[j] = _fit_one(
                part, table.scores[observed, j].astype(np.float32), dense_mean, dense_scale, settings
            )
    model = LearnedModel(
        models=table.models, spec=settings.spec, weights=weights, dense_weights=dense_weights, bias=bias,
        dense_mean=dense_mean.astype(np.float32), dense_scale=dense_scale.astype(np.float32),
        band_edges=np.zeros(0), trained_rows=len(table), source=table.source,
        costs_nd=tuple(float(c) for c in np.nanmean(table.costs_nd, axis=0)) if table.has_costs else (),
        **_held_range(batch.dense),
    )
    scores = gain_score(model.predict_batch(batch))
    edges = np.quantile(scores, np.arange(1, BANDS) / BANDS) if len(scores) else np.zeros(0)
    if not len(scores):
        return attrs.evolve(model, band_edges=np.asarray(edges, dtype=np.float64))
    percentiles = _PERCENTILES
    lengths = np.array([len(p) for p in table.prompts], dtype=np.float64)
    score_q, length_q = np.quantile(scores, percentiles), np.quantile(lengths, percentiles)
    blended = (np.interp(scores, score_q, percentiles) + np.interp(lengths, length_q, percentiles)) / 2
    return attrs.evolve(model, band_edges=np.asarray(edges, dtype=np.float64), score_quantiles=score_q,
                        length_quantiles=length_q, blend_quantiles=np.quantile(blended, percentiles))


def _held_range(dense: np.ndarray) -> dict[str, np.ndarray]:
    """The bounds a prediction holds each dense feature to: its training range, widened by its width each side."""
    if not len(dense):
        return {"dense_low": np.zeros(0, dtype=np.float32), "dense_high": np.zeros(0, dtype=np.float32)}
    low, high = dense.min(axis=0), dense.max(axis=0)
    return {"dense_low": low - (high - low), "dense_high": high + (high - low)}


def _logits(batch: FeatureBatch, weights: np.ndarray, dense_weights: np.ndarray, bias: np.ndarray,
            dense_mean: np.ndarray, dense_scale: np.ndarray) -> np.ndarray:
    dense = (batch.dense - dense_mean) * dense_scale
    out = dense @ dense_weights.T + bias
    for j in range(weights.shape[0]):
        out[:, j] += np.bincount(batch.rows, weights=batch.values * weights[j, batch.index], minlength=len(batch))
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.minimum(np.maximum(z, -30.0), 30.0)))  # np.clip's values, without its wrapper


@attrs.frozen(eq=False)
class _SparseProducts:
    """A batch's sparse part as a matrix X, laid out twice so X @ w and X.T @ r are segment sums.

    np.add.reduceat over entries sorted by row (for X @ w) and by bucket (for X.T @ r),
    in float32, is about three times faster than np.bincount on the fitting loop's
    two products, which is most of a fit's time on long prompts (MMLU: 11.6 million
    entries, 57 s per fit before, docs/ROUTING.md).
    """

    rows: int
    buckets: int
    by_row_index: np.ndarray
    by_row_values: np.ndarray
    row_starts: np.ndarray
    row_ids: np.ndarray
    by_bucket_rows: np.ndarray
    by_bucket_values: np.ndarray
    bucket_starts: np.ndarray
    bucket_ids: np.ndarray

    @classmethod
    def of(cls, batch: FeatureBatch, buckets: int) -> _SparseProducts:
        row_order = np.argsort(batch.rows, kind="stable")
        bucket_order = np.argsort(batch.index, kind="stable")
        sorted_rows, sorted_buckets = batch.rows[row_order], batch.index[bucket_order]
        row_starts = _segment_starts(sorted_rows)
        bucket_starts = _segment_starts(sorted_buckets)
        return cls(
            rows=len(batch), buckets=buckets,
            by_row_index=batch.index[row_order], by_row_values=batch.values[row_order].astype(np.float32),
            row_starts=row_starts, row_ids=sorted_rows[row_starts],
            by_bucket_rows=batch.rows[bucket_order], by_bucket_values=batch.values[bucket_order].astype(np.float32),
            bucket_starts=bucket_starts, bucket_ids=sorted_buckets[bucket_starts],
        )

    def times(self, weights: np.ndarray) -> np.ndarray:
        return _segment_sums(self.by_row_values, weights, self.by_row_index, self.row_starts, self.row_ids, self.rows)

    def transposed_times(self, residual: np.ndarray) -> np.ndarray:
        return _segment_sums(
            self.by_bucket_values, residual, self.by_bucket_rows, self.bucket_starts, self.bucket_ids, self.buckets
        )


def _segment_sums(values: np.ndarray, vector: np.ndarray, gather: np.ndarray, starts: np.ndarray,
                  ids: np.ndarray, size: int) -> np.ndarray:
    """out[ids[k]] = the sum of values * vector[gather] over segment k (segments begin at `starts`)."""
    out = np.zeros(size)
    if len(starts):
        out[ids] = np.add.reduceat(values * vector.astype(np.float32)[gather], starts)
    return out


def _segment_starts(sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def _adam_step(theta: np.ndarray, gradient: np.ndarray, first: np.ndarray, second: np.ndarray, step: int,
               rate: float) -> tuple[np.ndarray, np.ndarray]:
    """One Adam update of `theta` in place (β 0.9 / 0.999); the new moment estimates are returned."""
    first = 0.9 * first + 0.1 * gradient
    second = 0.999 * second + 0.001 * gradient * gradient
    theta -= rate * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return first, second


def _fit_all(batch: FeatureBatch, scores: np.ndarray, dense_mean: np.ndarray, dense_scale: np.ndarray,
             settings: FitSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every model's regression at once, as `_fit_one` fits each: the same loss, steps and Adam, per model.

    The batch's sparse part is laid out as a dense float32 matrix X, so each step is two
    matrix products for all models (X @ W and X.T @ R, BLAS) instead of two segment sums
    per model; a model's residuals are zero on the rows it was not observed on and are
    divided by its own row count, so each model learns from its rows alone. Used while X
    stays within DENSE_FIT_CELLS: a table's features are most of its buckets on long
    prompts, where this is several times faster than the per-model fit.
    """
    n, buckets = len(batch), settings.spec.buckets
    x = np.zeros((n, buckets), dtype=np.float32)
    x[batch.rows, batch.index] = batch.values
    dense = ((batch.dense - dense_mean) * dense_scale).astype(np.float64)
    observed = ~np.isnan(scores)
    counts = observed.sum(axis=0)
    per_row = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    y = np.where(observed, scores, 0.0)
    theta = np.zeros((buckets + dense.shape[1] + 1, scores.shape[1]))
    first = np.zeros_like(theta)
    second = np.zeros_like(theta)
    for step in range(1, settings.iterations + 1):
        w, d, b = theta[:buckets], theta[buckets:-1], theta[-1]
        z = (x @ w.astype(np.float32)).astype(np.float64) + dense @ d + b
        residual = np.where(observed, _sigmoid(z) - y, 0.0) * per_row
        gradient = np.concatenate([(x.T @ residual.astype(np.float32)).astype(np.float64), dense.T @ residual,
                                   residual.sum(axis=0, keepdims=True)])
        gradient[:-1] += settings.l2 * theta[:-1] * per_row
        first, second = _adam_step(theta, gradient, first, second, step, settings.learning_rate)
    theta[:, counts == 0] = 0.0
    return (theta[:buckets].T.astype(np.float32).copy(), theta[buckets:-1].T.astype(np.float32).copy(),
            theta[-1].astype(np.float32))


def _fit_one(batch: FeatureBatch, y: np.ndarray, dense_mean: np.ndarray, dense_scale: np.ndarray,
             settings: FitSettings) -> tuple[np.ndarray, np.ndarray, float]:
    """Full-batch Adam on the mean log-loss plus l2/n times half the squared weights (bias free)."""
    n, buckets = len(batch), settings.spec.buckets
    sparse = _SparseProducts.of(batch, buckets)
    dense = ((batch.dense - dense_mean) * dense_scale).astype(np.float64)
    size = buckets + dense.shape[1] + 1
    theta = np.zeros(size)
    first = np.zeros(size)
    second = np.zeros(size)
    for step in range(1, settings.iterations + 1):
        w, d, b = theta[:buckets], theta[buckets:-1], theta[-1]
        z = sparse.times(w) + dense @ d + b
        residual = (_sigmoid(z) - y) / n
        gradient = np.concatenate([sparse.transposed_times(residual), dense.T @ residual, [residual.sum()]])
        gradient[:-1] += settings.l2 * theta[:-1] / n
        first, second = _adam_step(theta, gradient, first, second, step, settings.learning_rate)
    return theta[:buckets].astype(np.float32), theta[buckets:-1].astype(np.float32), float(theta[-1])


# -- file ------------------------------------------------------------------------------


def save(model: LearnedModel, path: str | Path) -> None:
    """Write the model as an .npz of plain arrays (0600), header in JSON.

    Written beside `path` and renamed over it, so a reader (a server refitting while it
    routes, or one starting) sees the old model or the new one, never half of one.
    """
    header = {
        "format": FORMAT, "version": VERSION, "models": list(model.models),
        "spec": {"buckets": model.spec.buckets, "char_ngrams": list(model.spec.char_ngrams), "max_chars": model.spec.max_chars},
        "dense": list(DENSE), "costs_nd": list(model.costs_nd), "trained_rows": model.trained_rows, "source": model.source,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, header=np.frombuffer(orjson.dumps(header), dtype=np.uint8), weights=model.weights,
        dense_weights=model.dense_weights, bias=model.bias, dense_mean=model.dense_mean,
        dense_scale=model.dense_scale, band_edges=model.band_edges, score_quantiles=model.score_quantiles,
        length_quantiles=model.length_quantiles, blend_quantiles=model.blend_quantiles,
        dense_low=model.dense_low, dense_high=model.dense_high,
    )
    replace_durably(Path(path), buffer.getvalue())


def load(path: str | Path) -> LearnedModel:
    """Read a model file; ConfigError naming the file for anything that is not one of ours."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise ConfigError(f"learned router model {path}: no such file (train one: orchestrator routing fit)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"learned router model {path}: not a model file ({exc})") from None
    try:
        header = orjson.loads(arrays["header"].tobytes())
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ConfigError(f"learned router model {path}: format {header.get('format')!r} v{header.get('version')}, expected {FORMAT} v{VERSION}")
        if header["dense"] != list(DENSE):
            raise ConfigError(f"learned router model {path}: trained on other dense features; fit it again")
        spec = FeatureSpec(header["spec"]["buckets"], tuple(header["spec"]["char_ngrams"]), header["spec"]["max_chars"])
        model = LearnedModel(
            models=tuple(header["models"]), spec=spec, weights=arrays["weights"], dense_weights=arrays["dense_weights"],
            bias=arrays["bias"], dense_mean=arrays["dense_mean"], dense_scale=arrays["dense_scale"],
            band_edges=arrays["band_edges"], costs_nd=tuple(header["costs_nd"]), trained_rows=header["trained_rows"],
            source=header["source"], score_quantiles=arrays.get("score_quantiles", np.zeros(0)),
            length_quantiles=arrays.get("length_quantiles", np.zeros(0)),
            blend_quantiles=arrays.get("blend_quantiles", np.zeros(0)),
            dense_low=arrays.get("dense_low", np.zeros(0)), dense_high=arrays.get("dense_high", np.zeros(0)),
        )
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"learned router model {path}: damaged ({exc!r})") from None
    m = len(model.models)
    if model.weights.shape != (m, spec.buckets) or model.dense_weights.shape != (m, len(DENSE)) or model.bias.shape != (m,):
        raise ConfigError(f"learned router model {path}: array shapes do not match its header")
    for name in ("score_quantiles", "length_quantiles", "blend_quantiles"):
        quantiles = getattr(model, name)
        if len(quantiles) not in (0, 101) or np.any(np.diff(quantiles) < 0) or not np.all(np.isfinite(quantiles)):
            raise ConfigError(f"learned router model {path}: {name} must be 101 ascending numbers")
    low, high = model.dense_low, model.dense_high
    if len(low) != len(high) or len(low) not in (0, len(DENSE)) or not np.all(np.isfinite(low) & np.isfinite(high)) \
            or np.any(low > high):
        raise ConfigError(f"learned router model {path}: dense_low and dense_high must be {len(DENSE)} finite bounds, "
                          "low <= high")
    return model

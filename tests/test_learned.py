"""The learned router: features, fitting, the model file, and the estimator the config names."""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.errors import ConfigError
from actors.messages import ArcTask, Request
from actors.policy import learned
from actors.policy.estimators import AutoEstimator, LearnedEstimator, LearnedTextEstimator, build_estimator
from actors.policy.prompt_features import (
    DENSE,
    FeatureSpec,
    bucket_counts,
    counted_buckets,
    damped,
    dense_features,
    featurize,
    sparse_features,
)
from actors.policy.settings import EstimatorSettings
from orchestrator.config import load_config
from orchestrator.lab.outcomes import build_table

SPEC = FeatureSpec(buckets=1024)
LEVELS = (("cheap", 0.5), ("dear", 1.0))


def table(rows: int = 120):
    """The cheap model fails exactly the prompts that mention recursion; the dear one never fails."""
    records = []
    for i in range(rows):
        hard = i % 2 == 0
        records.append({
            "prompt": f"Write a function number {i} " + ("using recursion over the tree" if hard else "that adds the numbers"),
            "cheap": not hard, "dear": True,
        })
    return build_table(records, "synthetic")


@pytest.fixture(scope="module")
def model() -> learned.LearnedModel:
    return learned.fit(table(), learned.FitSettings(spec=SPEC))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_sparse_features_stay_in_range_unit_length_and_deterministic(text: str) -> None:
    index, values = sparse_features(text, SPEC)
    assert ((index >= 0) & (index < SPEC.buckets)).all() and len(set(index.tolist())) == len(index)
    assert len(values) == 0 or abs(float(np.dot(values, values)) - 1.0) < 1e-5
    again = sparse_features(text, SPEC)
    assert np.array_equal(index, again[0]) and np.array_equal(values, again[1])


def reference_sparse_features(text: str, spec: FeatureSpec) -> tuple[list[int], list[float]]:
    """The hashing rule written out one n-gram and one word at a time (the shipped models were fitted on it)."""
    folded = text[: spec.max_chars].lower().encode("utf-8", "replace").translate(bytes.maketrans(b"123456789", b"0" * 9))
    base, multiplier, mask = 1_000_003, 0x9E3779B97F4A7C15, (1 << 64) - 1
    shift = 64 - spec.buckets.bit_length() + 1
    counts: Counter[int] = Counter()
    for n in range(spec.char_ngrams[0], spec.char_ngrams[1] + 1):
        seed = n * pow(base, n, 1 << 64)
        for start in range(len(folded) - n + 1):
            poly = sum(byte * pow(base, n - 1 - k, 1 << 64) for k, byte in enumerate(folded[start : start + n]))
            counts[(((poly + seed) & mask) * multiplier & mask) >> shift] += 1  # (sum b_k B^(n-1-k) + n B^n) x M
    for word in re.findall(rb"[a-z]+", folded):
        counts[zlib.crc32(word) % spec.buckets] += 1
    index = sorted(counts)
    values = np.log1p(np.array([counts[i] for i in index], dtype=np.float64)).astype(np.float32)
    if len(values):
        values /= np.float32(np.sqrt(np.dot(values, values)))
    return index, values.tolist()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120))
def test_sparse_features_follow_the_hashing_rule_the_shipped_models_were_fitted_on(text: str) -> None:
    index, values = sparse_features(text, SPEC)
    expected_index, expected_values = reference_sparse_features(text, SPEC)
    assert index.tolist() == expected_index
    np.testing.assert_allclose(values, expected_values, rtol=1e-6)


def test_sparse_features_are_pinned_across_versions() -> None:
    """The shipped text default and every saved model hash prompts this way: the buckets must never drift."""
    index, values = sparse_features("She bought 17 apples at $3.50 each; how many did she buy in all?", FeatureSpec())
    assert len(index) == 183 and index[:12].tolist() == [23, 47, 65, 82, 87, 88, 125, 135, 153, 164, 220, 226]
    assert values[0] == pytest.approx(0.0705133, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=900))
def test_one_prompts_prediction_is_the_batch_prediction_of_its_features(text: str, model: learned.LearnedModel) -> None:
    """A prompt is predicted at run time from its bucket counts; a fit and an evaluation predict from the sparse
    (index, value) triples: the two are the same sums, in another order."""
    assert np.allclose(model.predict_text(text), model.predict_batch(featurize([text], SPEC))[0], rtol=0, atol=1e-6)


def test_damped_counts_are_float64_log1p_rounded_to_float32_beyond_the_table_too() -> None:
    counts = np.arange(40_000)
    assert np.array_equal(damped(counts), np.log1p(counts.astype(np.float64)).astype(np.float32))
    assert np.array_equal(damped(counts, most=39_999), np.log1p(counts.astype(np.float64)).astype(np.float32))
    for part in (counts[:100], counts[16_380:16_385], counts[16_380:16_384]):  # the table holds counts below 2**14
        assert np.array_equal(damped(part), np.log1p(part.astype(np.float64)).astype(np.float32))


def test_digits_are_folded_so_numbers_share_their_ngrams() -> None:
    a, b = sparse_features("She buys 17 apples", SPEC), sparse_features("She buys 42 apples", SPEC)
    assert np.array_equal(a[0], b[0])


def test_only_the_first_max_chars_are_hashed() -> None:
    spec = FeatureSpec(buckets=1024, max_chars=50)
    head = "x" * 50
    assert np.array_equal(sparse_features(head + "tail words", spec)[0], sparse_features(head, spec)[0])
    assert dense_features(head + "tail words")[0] > dense_features(head)[0]  # lengths see the whole text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(".?!a \t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u3000"), max_size=40) | st.text(max_size=80))
@example("Done. Next!")
@example("end.")
@example("a.\x1c")
def test_sentence_ends_are_counted_as_the_regular_expression_counts_them(text: str) -> None:
    """The ASCII fast path counts a mark followed by whitespace (every character `\\s` matches) or the end exactly
    as `[.?!](?:\\s|$)` does; non-ASCII text goes to the expression itself."""
    from actors.policy.prompt_features import sentence_ends

    assert sentence_ends(text) == len(re.findall(r"[.?!](?:\s|$)", text))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("12/½٣² a.\n"), max_size=40) | st.text(max_size=80))
@example("1/2")
@example("/1/2/")
def test_the_fraction_feature_is_a_digit_slash_digit_anywhere(text: str) -> None:
    """The model was fitted on `\\d/\\d` (any Unicode digit), searched; the feature now looks only around slashes."""
    position = DENSE.index("has_fraction")
    expected = bool(re.search(r"\d/\d", text)) or "half" in text or "third" in text
    assert dense_features(text)[position] == float(expected)


def test_a_batch_subset_is_the_batch_of_the_subset() -> None:
    texts = ["alpha beta", "gamma", "", "delta epsilon zeta"]
    batch = featurize(texts, SPEC)
    part = batch.subset(np.array([3, 1]))
    direct = featurize([texts[3], texts[1]], SPEC)
    def entries(b: object) -> list[tuple[int, int, float]]:
        return sorted(zip(b.rows.tolist(), b.index.tolist(), b.values.tolist()))  # type: ignore[attr-defined]

    assert entries(part) == entries(direct) and np.allclose(part.dense, direct.dense)


def test_fitting_learns_which_prompts_the_cheap_model_fails(model: learned.LearnedModel) -> None:
    hard = model.predict_text("Write a function number 999 using recursion over the tree")
    easy = model.predict_text("Write a function number 999 that adds the numbers")
    assert hard[0] < 0.3 < 0.7 < easy[0] and hard[1] > 0.7 and easy[1] > 0.7
    assert learned.gain_score(hard) > learned.gain_score(easy)


def test_a_prompt_far_longer_than_any_in_training_is_held_near_their_range(model: learned.LearnedModel) -> None:
    """Dense features are held to their training range widened by its width each side: a linear model would
    otherwise extrapolate a length it never saw into a logit at its limit, and P(success) of every tier to 0 or 1."""
    easy = "Write a function number 999 that adds the numbers" + " that adds the numbers" * 40
    hard = "Write a function number 999 using recursion over the tree" + " that adds the numbers" * 40
    assert model.predict_text(easy)[0] > 0.05 and model.predict_text(easy)[1] > 0.7  # unheld: 0.000 and 0.994
    assert model.predict_text(hard)[0] < model.predict_text(easy)[0] and model.predict_text(hard)[1] > 0.7
    trained = featurize(list(table().prompts), SPEC).dense
    width = trained.max(axis=0) - trained.min(axis=0)
    assert np.allclose(model.dense_low, trained.min(axis=0) - width) and np.allclose(model.dense_high, trained.max(axis=0) + width)
    features = featurize([easy, hard], SPEC)
    clipped = np.minimum(np.maximum(dense_features(easy), model.dense_low), model.dense_high)
    assert np.array_equal(clipped, np.minimum(dense_features(easy), model.dense_high)) and clipped[0] < dense_features(easy)[0]
    assert np.allclose(model.predict_batch(features), [model.predict_text(easy), model.predict_text(hard)], atol=1e-5)


def test_each_model_learns_only_from_rows_where_it_was_observed() -> None:
    records = [{"prompt": f"q {i} recursion" if i % 2 else f"q {i} add", "cheap": i % 2 == 0} for i in range(60)]
    records += [{"prompt": f"other {i}", "dear": True} for i in range(30)]
    fitted = learned.fit(build_table(records, "sparse"), learned.FitSettings(spec=SPEC))
    assert fitted.predict_text("q 5 recursion")[0] < 0.4 and fitted.predict_text("other 3")[1] > 0.6


def test_the_model_file_round_trips_owner_only_and_without_pickle(tmp_path: Path, model: learned.LearnedModel) -> None:
    path = tmp_path / "m.npz"
    learned.save(model, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with np.load(path, allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
    again = learned.load(path)
    text = "Write a function using recursion"
    assert np.array_equal(again.predict_text(text), model.predict_text(text))
    assert again.models == ("cheap", "dear") and again.spec == SPEC and len(again.band_edges) == learned.BANDS - 1
    assert np.array_equal(again.dense_low, model.dense_low) and np.array_equal(again.dense_high, model.dense_high)


def test_a_model_file_without_the_training_range_still_loads_and_a_broken_range_is_refused(
        tmp_path: Path, model: learned.LearnedModel) -> None:
    path = tmp_path / "m.npz"
    unbounded = attrs.evolve(model, dense_low=np.zeros(0), dense_high=np.zeros(0))
    learned.save(unbounded, path)
    long_text = "Write a function number 999 that adds the numbers" * 20
    assert np.array_equal(learned.load(path).predict_text(long_text), unbounded.predict_text(long_text))
    learned.save(attrs.evolve(model, dense_low=model.dense_high + 1), path)
    with pytest.raises(ConfigError, match="dense_low and dense_high"):
        learned.load(path)


def test_a_missing_or_foreign_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        learned.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a model file"):
        learned.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", header=np.frombuffer(b'{"format": "x", "version": 1}', dtype=np.uint8))
    with pytest.raises(ConfigError, match="format 'x'"):
        learned.load(tmp_path / "other.npz")


def test_the_config_names_the_model_relative_to_itself(tmp_path: Path, model: learned.LearnedModel) -> None:
    (tmp_path / "models").mkdir()
    learned.save(model, tmp_path / "models" / "r.npz")
    config = tmp_path / "c.yaml"
    config.write_text(
        "llm_routing:\n  complexity_detection:\n    estimator: learned\n    model_path: models/r.npz\n"
        "    thresholds: {cheap: 0.6, dear: 1.0}\n  optimization: {budget_limit: 10}\n  model_tiers:\n"
        "    cheap: {cost_per_million_tokens: 0.1, max_tokens: 100, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: cheap}\n"
        "    dear: {cost_per_million_tokens: 1.0, max_tokens: 100, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: dear}\n"
    )
    estimator = build_estimator(load_config(config, environ={}).engine.router.estimator)
    assert isinstance(estimator, LearnedEstimator)
    hard = estimator.estimate(Request.prompt("Write a function number 5 using recursion over the tree"))
    easy = estimator.estimate(Request.prompt("Write a function number 5 that adds the numbers"))
    assert (hard.level, easy.level) == ("dear", "cheap")
    assert set(hard.features) == {"p_success:cheap", "p_success:dear"} and "learned P(success)" in hard.reasons[0]


def test_the_reason_names_each_model_with_its_predicted_success_and_the_score_is_the_gain(
        tmp_path: Path, model: learned.LearnedModel) -> None:
    """What a reader of the decision sees: every model (a name with % in it as written) and P to two places."""
    renamed = attrs.evolve(model, models=("cheap 5%", "dear"))
    learned.save(renamed, tmp_path / "m.npz")
    estimator = LearnedEstimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz")))
    request = Request.prompt("Write a function number 5 using recursion over the tree")
    estimate = estimator.estimate(request)
    cheap, dear = renamed.predict_text(learned.request_text(request)).tolist()
    assert estimate.reasons[0] == f"learned P(success) cheap 5% {cheap:.2f}, dear {dear:.2f}"
    assert estimate.score == round((1 + dear - cheap) / 2, 6)
    assert estimate.features == {"p_success:cheap 5%": round(cheap, 4), "p_success:dear": round(dear, 4)}


def test_with_a_target_the_cheapest_tier_that_clears_it_is_chosen(tmp_path: Path, model: learned.LearnedModel) -> None:
    learned.save(model, tmp_path / "m.npz")
    estimator = LearnedEstimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz"), target=0.7))
    assert estimator.estimate(Request.prompt("Write a function number 5 that adds the numbers")).level == "cheap"
    assert estimator.estimate(Request.prompt("Write a function number 5 using recursion over the tree")).level == "dear"
    unreachable = LearnedEstimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz"), target=1.0))
    assert "no tier reaches" in unreachable.estimate(Request.prompt("anything")).reasons[-1]
    with pytest.raises(ConfigError, match="one level per model"):
        LearnedEstimator(EstimatorSettings("learned", {}, LEVELS + (("top", 2.0),), model_path=str(tmp_path / "m.npz"), target=0.7))
    with pytest.raises(ConfigError, match="needs model_path"):
        build_estimator(EstimatorSettings("learned", {}, LEVELS))


def test_what_an_online_learner_reads_per_request(tmp_path: Path, model: learned.LearnedModel) -> None:
    learned.save(model, tmp_path / "m.npz")
    estimator = LearnedEstimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz")))
    request = Request.prompt("Write a function using recursion")
    assert estimator.predict(request).shape == (2,)
    bands = {estimator.feature_band(Request.prompt(p)) for p in table().prompts}
    assert bands <= set(range(learned.BANDS)) and len(bands) >= 2


def test_an_arc_request_is_scored_from_its_rendered_prompt_and_grid_features(tmp_path: Path, model: learned.LearnedModel) -> None:
    learned.save(model, tmp_path / "m.npz")
    estimator = LearnedEstimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz")))
    task = ArcTask.from_lists("t", [{"input": [[1, 2]], "output": [[2, 1]]}])
    estimate = estimator.estimate(Request(task=task))
    assert 0.0 <= estimate.score <= 1.0
    assert dense_features("x", task)[DENSE.index("grid_size_score")] > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_the_fits_sparse_products_equal_the_matrix_products(texts: list[str], seed: int) -> None:
    """The fitting loop's segment sums are X @ w and X.T @ r, empty prompts (rows with no entries) included."""
    batch = featurize(texts, SPEC)
    matrix = np.zeros((len(texts), SPEC.buckets))
    np.add.at(matrix, (batch.rows, batch.index), batch.values)
    rng = np.random.default_rng(seed)
    weights, residual = rng.normal(size=SPEC.buckets), rng.normal(size=len(texts))
    products = learned._SparseProducts.of(batch, SPEC.buckets)  # noqa: SLF001 - the fit's inner step
    np.testing.assert_allclose(products.times(weights), matrix @ weights, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(products.transposed_times(residual), matrix.T @ residual, rtol=1e-5, atol=1e-5)


def test_fitting_every_model_at_once_fits_each_as_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense all-models fit (short tables) and the per-model sparse fit (long ones) give the same model,
    including on a sparse history where each model was observed on some rows only."""
    records = []
    for i in range(90):
        record: dict[str, object] = {"prompt": f"Task {i}: " + ("prove the recursion terminates" if i % 3 else "add two numbers")}
        if i % 2 == 0:
            record["cheap"] = i % 3 == 0
        if i % 5:
            record["dear"] = True
        record["mid"] = i % 4 != 0
        records.append(record)
    sparse_history = build_table(records, "sparse history")
    assert np.isnan(sparse_history.scores).any()
    settings = learned.FitSettings(spec=SPEC, iterations=120)
    batch = learned.table_features(sparse_history, SPEC)
    together = learned.fit(sparse_history, settings, batch)
    monkeypatch.setattr(learned, "DENSE_FIT_CELLS", 0)
    alone = learned.fit(sparse_history, settings, batch)
    np.testing.assert_allclose(together.weights, alone.weights, atol=1e-5)
    np.testing.assert_allclose(together.dense_weights, alone.dense_weights, atol=1e-5)
    np.testing.assert_allclose(together.bias, alone.bias, atol=1e-5)
    np.testing.assert_allclose(together.predict_batch(batch), alone.predict_batch(batch), atol=1e-5)


def test_a_learned_text_model_scores_text_prompts_by_percentile_of_its_training_gain(tmp_path: Path) -> None:
    """`complexity_detection.text_model`: the auto/text estimator scores text by the model, and the thresholds
    cut by share of the training prompts (half of them mention recursion, the cheap model's failure)."""
    model = learned.fit(table(), learned.FitSettings(spec=SPEC))
    learned.save(model, tmp_path / "text.npz")
    assert len(learned.load(tmp_path / "text.npz").score_quantiles) == 101
    settings = EstimatorSettings("auto", {}, LEVELS, text_model_path=str(tmp_path / "text.npz"))
    estimator = build_estimator(settings)
    assert isinstance(estimator, AutoEstimator) and isinstance(estimator.text, LearnedTextEstimator)
    estimates = [estimator.estimate(Request.prompt(p)) for p in table().prompts]
    hard = [e for p, e in zip(table().prompts, estimates) if "recursion" in p]
    easy = [e for p, e in zip(table().prompts, estimates) if "recursion" not in p]
    assert min(e.score for e in hard) > max(e.score for e in easy), "more to gain ranks higher"
    assert {e.level for e in hard} == {"dear"} and {e.level for e in easy} == {"cheap"}, "0.5 cuts the training half"
    assert hard[0].reasons[0].startswith("learned text router (text.npz): P(success) weakest")
    assert estimator.estimate(Request.prompt("x", score=0.9)).reasons == ("score given by the caller",)
    raw = attrs.evolve(model, score_quantiles=np.zeros(0))
    assert raw.percentile(0.62) == 0.62, "a model file from before quantiles were kept scores by raw gain"


def test_a_text_model_is_for_the_text_estimators_and_must_be_a_sound_file(tmp_path: Path) -> None:
    model = learned.fit(table(), learned.FitSettings(spec=SPEC))
    learned.save(attrs.evolve(model, score_quantiles=np.linspace(1.0, 0.0, 101)), tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="score_quantiles must be 101 ascending numbers"):
        learned.load(tmp_path / "bad.npz")
    config = tmp_path / "c.yaml"
    config.write_text(
        "llm_routing:\n  complexity_detection:\n    estimator: arc\n    text_model: t.npz\n"
        "    thresholds: {cheap: 0.5, dear: 1.0}\n  optimization: {budget_limit: 1}\n  model_tiers:\n"
        "    cheap: {cost_per_million_tokens: 0.1, max_tokens: 10, temperature: 0, api_endpoint: 'simulator:/v1', "
        "protocol: openai, model: c}\n"
    )
    with pytest.raises(ConfigError, match="text_model: scores text prompts for estimator text or auto, not 'arc'"):
        load_config(config, environ={})


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 5000), st.integers(0, 5000))
def test_the_blended_text_score_rises_with_gain_and_with_length(gain: float, more_gain: float, chars: int,
                                                               more_chars: int) -> None:
    gain, more_gain = sorted((gain, more_gain))
    chars, more_chars = sorted((chars, more_chars))
    model = _BLEND_MODEL
    low = model.blended_percentile(gain, chars)
    assert 0.0 <= low <= 1.0
    assert model.blended_percentile(more_gain, chars) >= low and model.blended_percentile(gain, more_chars) >= low


_BLEND_MODEL = learned.fit(table(), learned.FitSettings(spec=SPEC, iterations=50))


def test_a_config_extending_one_with_a_text_model_may_pick_another_estimator(tmp_path: Path) -> None:
    """A parent routes text by the shipped model; a config extending it with `estimator: arc` drops it."""
    shipped = Path(__file__).parent.parent / "configs"
    parent = tmp_path / "learned_text.yaml"
    parent.write_text(f"extends: {shipped / 'coding_tiers.yaml'}\n"
                      f"llm_routing:\n  complexity_detection:\n    text_model: {shipped / 'models' / 'text_default.npz'}\n")
    assert load_config(parent, environ={}).engine.router.estimator.text_model_path.endswith("text_default.npz")
    config = tmp_path / "arc.yaml"
    config.write_text(f"extends: {parent}\nllm_routing:\n  complexity_detection:\n    estimator: arc\n")
    estimator = load_config(config, environ={}).engine.router.estimator
    assert estimator.kind == "arc" and estimator.text_model_path is None


def test_a_learned_router_predicts_a_repeated_prompt_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several samples of one prompt (a GA's k children, a retry) cost one prediction."""
    learned.save(learned.fit(table(), learned.FitSettings(spec=SPEC)), tmp_path / "m.npz")
    estimator = build_estimator(EstimatorSettings("learned", {}, LEVELS, model_path=str(tmp_path / "m.npz")))
    assert isinstance(estimator, LearnedEstimator)
    calls: list[str] = []
    real = learned.LearnedModel.predict_text
    monkeypatch.setattr(learned.LearnedModel, "predict_text",
                        lambda self, text, task=None: calls.append(text) or real(self, text, task))
    first = estimator.estimate(Request.prompt("Write a function using recursion", sample_index=0))
    again = estimator.estimate(Request.prompt("Write a function using recursion", sample_index=1))
    other = estimator.estimate(Request.prompt("Write a function that adds"))
    assert calls == ["Write a function using recursion", "Write a function that adds"]
    assert first.score == again.score and other.score != first.score


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_the_ngrams_counted_bound_every_bucket_so_damping_needs_no_scan(text: str) -> None:
    """Run time damps a prompt's counts under the number of n-grams it counted: that number is their sum."""
    counts, counted = counted_buckets(text, SPEC)
    if counts is None:
        assert counted == 0 and bucket_counts(text, SPEC) is None
        return
    assert int(counts.sum()) == counted
    assert np.array_equal(damped(counts, counted), damped(counts))

"""Routing metrics and the k-fold replay, pinned on tables whose answers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.policy.learned import FitSettings
from orchestrator.cli.main import main
from orchestrator.lab import metrics
from orchestrator.lab.evaluation import SplitSpread, evaluate, fold_of, repeated
from orchestrator.lab.outcomes import build_table

N, GAIN = 100, 40


def gap_table(losses: int = 0) -> dict[str, np.ndarray]:
    """n prompts; the strong model right everywhere except `losses` rows; the weak wrong on GAIN rows."""
    weak = np.ones(N)
    weak[:GAIN] = 0.0
    strong = np.ones(N)
    strong[GAIN : GAIN + losses] = 0.0
    return {"weak": weak, "strong": strong}


def curve(score: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> metrics.TwoTier:
    return metrics.two_tier(score, weak, strong, np.zeros(len(weak)), np.ones(len(weak)))


def test_oracle_apgr_and_cpt_have_their_closed_form() -> None:
    t = gap_table()
    oracle = curve(t["strong"] - t["weak"], t["weak"], t["strong"])
    # PGR(k) = min(k, G) / G, averaged over k = 0..n
    assert oracle.apgr == pytest.approx(((GAIN + 1) / 2 + N - GAIN) / (N + 1), abs=1e-12)
    assert oracle.cpt(0.5) == pytest.approx(0.20) and oracle.cpt(0.8) == pytest.approx(0.32)
    assert oracle.cost_to_reach(0.95) == pytest.approx(0.35)  # 95 correct of 100 after 35 strong calls


def test_an_oracle_beats_one_where_the_strong_model_loses_rows() -> None:
    t = gap_table(losses=10)
    assert curve(t["strong"] - t["weak"], t["weak"], t["strong"]).apgr > 1.0


def test_a_constant_score_is_exactly_random_and_the_ends_are_zero_and_one() -> None:
    t = gap_table(losses=7)
    flat = curve(np.zeros(N), t["weak"], t["strong"])
    assert flat.apgr == pytest.approx(0.5, abs=1e-12)
    assert np.allclose(np.diff(flat.accuracy), np.diff(flat.accuracy)[0])  # ties enter in proportion: a straight line
    assert flat.cpt(0.8) == pytest.approx(0.80)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans()), min_size=2, max_size=40))
def test_ties_enter_in_proportion_whatever_the_order_of_rows(rows: list[tuple[int, bool, bool]]) -> None:
    score = np.array([r[0] for r in rows], dtype=float)
    weak = np.array([r[1] for r in rows], dtype=float)
    strong = np.array([r[2] for r in rows], dtype=float)
    reverse = slice(None, None, -1)
    a = metrics.proportional_curve(score, weak, strong)
    b = metrics.proportional_curve(score[reverse], weak[reverse], strong[reverse])
    assert np.allclose(a, b)
    assert a[0] == pytest.approx(weak.sum()) and a[-1] == pytest.approx(strong.sum())


def keyword_table(seed: int, rows: int = 240, word: str = "recursion") -> list[dict[str, object]]:
    """Another domain: the weak model fails exactly the prompts with `word`; lengths carry no signal."""
    rng = np.random.default_rng(seed)
    fillers = ["parse the file", "sum a list", "rename a variable", "sort the records", "format a date", "merge two dicts"]
    records = []
    for i in range(rows):
        hard = i % 3 == 0
        words = [fillers[k] for k in rng.integers(0, len(fillers), rng.integers(1, 8))]
        if hard:
            words.insert(int(rng.integers(0, len(words) + 1)), f"using {word}")
        records.append({"prompt": f"Task {i}: " + ", ".join(words), "small": not hard, "large": True})
    return records


def test_on_another_domain_the_learned_router_beats_length_without_code_changes() -> None:
    table = build_table(keyword_table(seed=3), "synthetic-code")
    result = evaluate(table, folds=5)
    learned, length = result.result("learned").two_tier.apgr, result.result("length").two_tier.apgr
    assert learned >= length and learned > 0.75
    assert result.result("random").two_tier.apgr == pytest.approx(0.5)
    assert result.result("always-strong").two_tier.apgr == pytest.approx(1.0)


def test_the_learned_router_never_scores_a_prompt_it_was_fitted_on() -> None:
    """Labels scrambled at random: an in-sample fit would memorise them; k-fold must stay near chance."""
    records = keyword_table(seed=5, rows=200)
    rng = np.random.default_rng(0)
    for record in records:
        record["small"] = bool(rng.random() < 0.5)
        record["prompt"] = str(record["prompt"]) + " " + "".join(chr(97 + int(c)) for c in rng.integers(0, 26, 8))
    loose = FitSettings(l2=0.01, iterations=400)  # free to memorise: in sample it scores about 0.73
    learned = evaluate(build_table(records, "noise"), routers=("learned",), folds=5, settings=loose).result("learned").two_tier.apgr
    assert abs(learned - 0.5) < 0.07


def test_folds_partition_the_rows_evenly() -> None:
    assignment = fold_of(103, 5, seed=1)
    counts = np.bincount(assignment)
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1


def three_models(rows: int = 90) -> list[dict[str, object]]:
    """Cheap right on a third, mid on two thirds, top everywhere; costs 1, 3, 10 micro-dollars."""
    records = []
    for i in range(rows):
        kind = i % 3
        records.append({
            "prompt": f"{['easy', 'medium', 'hard'][kind]} item {i}",
            "cheap": kind == 0, "mid": kind <= 1, "top": True,
            "cheap_cost": "0.000001", "mid_cost": "0.000003", "top_cost": "0.00001",
        })
    return records


def test_multi_tier_oracle_reaches_the_strongest_quality_at_the_cost_it_must_pay() -> None:
    table = build_table(three_models(), "three")
    assert table.models == ("cheap", "mid", "top")
    result = evaluate(table, routers=("random", "oracle"), folds=3)
    oracle = result.result("oracle").multi_tier
    assert oracle is not None
    # all correct at cost (30·1 + 30·3 + 30·10) / (90·10) = 420/900 of always-top
    assert oracle.cost_to_reach(1.0) == pytest.approx(420 / 900)
    random = result.result("random").multi_tier
    assert random is not None and random.apgr < oracle.apgr


def test_eval_json_names_every_router_with_its_apgr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "table.csv"
    rows = keyword_table(seed=1, rows=60)
    path.write_text("prompt,small,large\n" + "".join(f"\"{r['prompt']}\",{r['small']},{r['large']}\n" for r in rows))
    assert main(["routing", "eval", "--data", str(path), "--folds", "3", "--json", "--plot", str(tmp_path / "p.html")]) == 0
    data = json.loads(capsys.readouterr().out)
    for name in ("learned", "length", "random", "heuristic", "oracle", "always-weak", "always-strong"):
        assert isinstance(data[name]["apgr"], float)
    assert data["random"]["apgr"] == 0.5 and data["always-strong"]["apgr"] == 1.0
    assert "<svg" in (tmp_path / "p.html").read_text()
    assert main(["routing", "eval", "--data", str(path), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "CPT(80%)" in out and "learned" in out and "quality-cost curve" in out


def noisy_table(rows: int = 90) -> list[dict[str, object]]:
    """The keyword table with a sixth of the weak model's outcomes flipped: which rows land in which fold matters."""
    records = keyword_table(seed=7, rows=rows)
    for i in np.random.default_rng(11).choice(rows, rows // 6, replace=False):
        records[i]["small"] = not records[i]["small"]
    return records


def test_repeated_splits_are_the_evaluations_of_consecutive_seeds() -> None:
    table = build_table(noisy_table(), "noisy")
    first, spreads = repeated(table, routers=("length", "learned"), folds=3, seed=4, repeats=3)
    by_name = {s.name: s for s in spreads}
    alone = [evaluate(table, ("length", "learned"), folds=3, seed=4 + k) for k in range(3)]
    assert by_name["learned"].apgr == pytest.approx([e.result("learned").two_tier.apgr for e in alone])
    assert by_name["learned"].cpt80 == tuple(e.result("learned").two_tier.cpt(0.8) for e in alone)
    assert len(set(by_name["learned"].apgr)) == 3  # the split moves the learned router on a noisy table
    assert by_name["length"].apgr == (alone[0].result("length").two_tier.apgr,) * 3  # and not a rule
    assert first.result("learned").two_tier.apgr == by_name["learned"].apgr[0]
    assert by_name["learned"].mean_apgr == pytest.approx(np.mean(by_name["learned"].apgr))


def test_a_mean_cpt_is_given_only_when_every_split_reaches_it() -> None:
    assert SplitSpread("r", (0.6, 0.7), (0.5, 0.7)).mean_cpt80 == pytest.approx(0.6)
    assert SplitSpread("r", (0.6, 0.7), (0.5, None)).mean_cpt80 is None


def test_eval_repeats_prints_the_spread_over_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "noisy.csv"
    path.write_text("prompt,small,large\n" + "".join(f"\"{r['prompt']}\",{r['small']},{r['large']}\n" for r in noisy_table()))
    argv = ["routing", "eval", "--data", str(path), "--folds", "3", "--seed", "2", "--repeats", "3", "--router", "learned"]
    assert main([*argv, "--json"]) == 0
    splits = json.loads(capsys.readouterr().out)["splits"]
    assert splits["seeds"] == [2, 3, 4] and len(splits["learned"]["apgr"]) == 3
    assert splits["learned"]["apgr_mean"] == pytest.approx(np.mean(splits["learned"]["apgr"]), abs=1e-6)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "over 3 splits into 3 folds (seeds 2-4)" in out
    spread = out.split("over 3 splits")[1]
    row = next(line.split() for line in spread.splitlines() if line.startswith("learned"))
    assert float(row[1]) == pytest.approx(np.mean(splits["learned"]["apgr"]), abs=5e-4)


def test_a_table_without_a_gap_is_refused_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flat.csv"
    path.write_text("prompt,a,b\n" + "".join(f"p{i},True,True\n" for i in range(10)))
    assert main(["routing", "eval", "--data", str(path), "--folds", "2"]) == 2
    err = capsys.readouterr().err
    assert "flat.csv: " in err and "no gap to recover" in err


def test_fit_refuses_a_table_of_one_model_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.csv"
    path.write_text("prompt,solo\np,1\nq,0\n")
    assert main(["routing", "fit", "--data", str(path), "--out", str(tmp_path / "m.npz")]) == 2
    assert "one.csv: a router chooses between models; the table scores 1 (solo)" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()

"""Outcome tables: the documented CSV/JSONL shapes, model order, merging, errors, and telemetry history."""

from __future__ import annotations

import math
import re
from pathlib import Path

import anyio
import numpy as np
import pytest

from actors.messages import Request
from orchestrator.api import Orchestrator
from orchestrator.config import load_config
from orchestrator.lab.history import table_from_telemetry
from orchestrator.lab.outcomes import OutcomeTableError, read_table, table_to_jsonl

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
ROUTELLM_HEAD = "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1_response,gpt-4-1106-preview_response\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_routellm_csv_is_read_as_it_is(tmp_path: Path) -> None:
    body = ROUTELLM_HEAD + 'What is 2+2?,True,True," It is\n4.","4"\nA harder one,False,True,wrong,right\nThird,False,False,x,y\n'
    table = read_table(write(tmp_path, "r.csv", body))
    assert table.models == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")  # weakest first
    assert table.scores.tolist() == [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    assert table.response(0, "mistralai/Mixtral-8x7B-Instruct-v0.1") == " It is\n4."
    assert not table.has_costs and table.relative_costs()[0].tolist() == [0.0, 1.0]


def test_with_costs_models_are_ordered_by_cost_not_accuracy(tmp_path: Path) -> None:
    body = "prompt,big,small,big_cost,small_cost\np1,False,True,0.002,0.0001\np2,True,True,0.004,0.0003\n"
    table = read_table(write(tmp_path, "c.csv", body))
    assert table.models == ("small", "big")
    assert table.costs_nd.tolist() == [[100_000, 2_000_000], [300_000, 4_000_000]]


def test_costs_and_scores_as_people_write_them_are_read_and_the_rounding_counted(tmp_path: Path) -> None:
    """Binary-float costs (a public router benchmark's CSV), $ and thousands separators, percentages."""
    body = ("prompt,big,small,big_cost,small_cost\n"
            "p1,85%,True,0.0005479999999999999,$0.0001\n"
            "p2,1,12.5 %,\"1,234.5\",0.000000000400000001\n")
    table = read_table(write(tmp_path, "people.csv", body))
    assert table.models == ("small", "big")
    assert table.costs_nd.tolist() == [[100_000, 548_000], [0, 1_234_500_000_000]]
    assert table.scores.tolist() == [[1.0, 0.85], [0.125, 1.0]]
    assert table.rounded_costs == 2, "the float and the cost past nine decimals; exact cells are not counted"


@pytest.mark.parametrize(("cell", "why"), [("\"1,5\"", "ambiguous cost '1,5'"), ("-0.1", "negative or not finite"),
                                          ("\"12,34\"", "ambiguous cost '12,34'"), ("nan", "negative or not finite"),
                                          ("1e999999", "more than $1,000,000"), ("1000000.000000001", "not the cost of one call")])
def test_an_ambiguous_or_impossible_cost_is_refused_naming_row_and_column(tmp_path: Path, cell: str, why: str) -> None:
    body = f"prompt,a,a_cost\np1,1,0.1\np2,0,{cell}\n"
    with pytest.raises(OutcomeTableError, match=rf"ambiguous\.csv: row 2: column 'a_cost': .*{re.escape(why)}"):
        read_table(write(tmp_path, "ambiguous.csv", body))


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes("\ufeffprompt,a,b\np,1,0\nq,0,1\n".encode("utf-8"))
    table = read_table(tmp_path / "bom.csv")
    assert table.prompts == ("p", "q") and set(table.models) == {"a", "b"}


@pytest.mark.parametrize(("body", "why"), [
    ("prompt,a,b\np,1,0\nq,0,1,1,0\n", "line 3: 5 fields, the header names 3"),
    ("prompt,a,a,b\np,1,0,1\n", "the CSV header names 'a' more than once"),
    ("prompt,,b\np,1,0\n", "the CSV header's column 2 has no name"),
    ("prompt,a,b,gpt4_cost\np,1,0,0.1\n", "costs for 'gpt4', which no column scores \\(scored: 'a', 'b'\\)"),
])
def test_a_csv_whose_columns_cannot_be_told_apart_is_refused_naming_where(tmp_path: Path, body: str, why: str) -> None:
    with pytest.raises(OutcomeTableError, match=rf"odd\.csv: {why}"):
        read_table(write(tmp_path, "odd.csv", body))


def test_a_prompt_cost_column_is_not_taken_for_a_models_cost(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "pc.csv", "prompt,prompt_cost,a,b\np,0.1,1,0\nq,0.2,0,1\n"))
    assert table.models == ("a", "b") and not table.has_costs


def test_a_column_of_ids_or_labels_is_not_taken_for_a_model(tmp_path: Path) -> None:
    body = "id,prompt,category,a,b\n0,p0,math,1,0\n1,p1,code,0,1\n17,p2,math,1,1\n"
    table = read_table(write(tmp_path, "ids.csv", body))
    assert set(table.models) == {"a", "b"}


def test_jsonl_grouped_outcomes_round_trip_and_repeated_prompts_merge(tmp_path: Path) -> None:
    body = (
        '{"prompt": "p", "outcomes": {"a": {"score": 1, "response": "yes", "cost": 0.001}}}\n'
        '{"prompt": "p", "outcomes": {"a": 0, "b": {"score": 0.5, "cost": 0.01}}}\n'
        '{"prompt": "q", "outcomes": {"b": true}}\n'
    )
    table = read_table(write(tmp_path, "h.jsonl", body))
    assert len(table) == 2 and table.models == ("a", "b")
    assert table.scores[0].tolist() == [0.5, 0.5] and math.isnan(table.scores[1, 0])
    assert len(table.complete()) == 1
    again = read_table(write(tmp_path, "again.jsonl", table_to_jsonl(table)))
    assert again.prompts == table.prompts and np.array_equal(again.scores, table.scores, equal_nan=True)
    assert np.array_equal(again.costs_nd, table.costs_nd, equal_nan=True) and again.response(0, "a") == "yes"


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("a.csv", "question,a\nq,True\n", r"a\.csv: the CSV header has no `prompt` column"),
        ("b.csv", "prompt,a,a_cost\np,True,cheap\n", r"b\.csv: row 1: column 'a_cost': not a cost: 'cheap'"),
        ("c.csv", "prompt,a\np,maybe\n", r"c\.csv: no column holds per-model scores"),
        ("d.jsonl", '{"prompt": "p", "outcomes": {"a": 3}}\n', r"d\.jsonl:1: outcomes\['a'\] score 3 is not in \[0, 1\]"),
        ("e.jsonl", '{"prompt": "p", "outcomes": {"a": {"score": 1, "grade": 2}}}\n', r"e\.jsonl:1: outcomes\['a'\] has unknown key"),
        ("f.jsonl", '{"prompt": "", "a": 1}\n', r"f\.jsonl: row 1: needs a non-empty string `prompt`"),
        ("g.jsonl", "not json\n", r"g\.jsonl:1: not valid JSON"),
    ],
)
def test_bad_tables_name_the_file_the_place_and_the_problem(tmp_path: Path, name: str, body: str, message: str) -> None:
    with pytest.raises(OutcomeTableError, match=message):
        read_table(write(tmp_path, name, body))


def test_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(OutcomeTableError, match="cannot read outcome table"):
        read_table(tmp_path / "nope.csv")


def test_a_telemetry_log_with_feedback_becomes_an_outcome_table(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "coding_tiers.yaml", state_dir=tmp_path / "state", environ={})
    prompts = [f"Fix typo in README line {i}" for i in range(4)]

    async def main() -> None:
        async with Orchestrator.start(config) as orch:
            for i, prompt in enumerate(prompts):
                for tier in ("haiku", "opus"):
                    result = await orch.generate(Request.prompt(prompt, tier=tier, request_id=f"{tier}-{i}"))
                    orch.feedback(result.request_id, 1.0 if tier == "opus" or i % 2 else 0.0)

    anyio.run(main)
    table, problems = table_from_telemetry(tmp_path / "state" / "telemetry")
    assert problems == [] and set(table.prompts) == set(prompts)
    assert table.models == ("claude-haiku", "claude-opus")  # both tiers priced: cheaper first
    assert table.has_costs and (table.costs_nd[:, 0] < table.costs_nd[:, 1]).all()
    row = table.prompts.index(prompts[0])
    assert table.scores[row].tolist() == [0.0, 1.0] and table.response(row, "claude-opus")
    with pytest.raises(OutcomeTableError, match="no telemetry segments"):
        table_from_telemetry(tmp_path / "empty")


def test_the_router_is_fitted_straight_from_a_telemetry_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`routing fit --telemetry`: the caller's feedback is the training set; the model names the answering models."""
    from actors.policy import learned
    from orchestrator.cli.main import main

    config = load_config(CONFIGS / "coding_tiers.yaml", state_dir=tmp_path / "state", environ={})

    async def scored_run() -> None:
        async with Orchestrator.start(config) as orch:
            for i in range(24):
                hard = i % 2 == 0
                prompt = f"Task {i}: " + ("prove the lock-free queue is linearizable" if hard else "fix the typo in README")
                for tier in ("haiku", "opus"):
                    result = await orch.generate(Request.prompt(prompt, tier=tier, request_id=f"{tier}-{i}"))
                    orch.feedback(result.request_id, 0.0 if hard and tier == "haiku" else 1.0)

    anyio.run(scored_run)
    out = tmp_path / "router.npz"
    assert main(["routing", "fit", "--telemetry", str(tmp_path / "state" / "telemetry"), "--out", str(out)]) == 0
    assert "fitted on 24 prompts" in capsys.readouterr().out
    model = learned.load(out)
    assert model.models == ("claude-haiku", "claude-opus")
    hard, easy = model.predict_text("prove the lock-free queue is linearizable"), model.predict_text("fix the typo in README")
    assert hard[0] < easy[0], "the cheap model is predicted to fail where the feedback said it did"

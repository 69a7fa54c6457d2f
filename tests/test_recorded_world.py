"""The recorded-outcomes world: real loopback HTTP, answers from an outcome table, graded runs."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import attrs
import pytest

from actors.errors import ConfigError
from actors.messages import Request
from orchestrator.api import Orchestrator
from orchestrator.cli.main import main
from orchestrator.config import load_config
from orchestrator.simulator.recorded import RecordedRun, RecordedWorld, is_outcome_table, world_from_dict

PROMPTS = [f"How many apples are left in case {i}?" for i in range(6)]


def table_csv(tmp_path: Path) -> Path:
    lines = ["prompt,small-model,big-model,small-model_response,big-model_response"]
    for i, prompt in enumerate(PROMPTS):
        lines.append(f'"{prompt}",{i % 2 == 0},True,small says {i},big says {i}')
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "recorded.yaml"
    path.write_text(
        "llm_routing:\n"
        "  complexity_detection:\n    estimator: text\n    thresholds: {small: 25, big: 100}\n"
        "  optimization: {budget_limit: 10}\n"
        "  routing: {budget_pressure_share: null}\n"
        "  model_tiers:\n"
        "    small: {cost_per_million_tokens: 1.0, max_tokens: 64, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: small-model}\n"
        "    big: {cost_input: 10.0, cost_output: 30.0, max_tokens: 64, temperature: 0, api_endpoint: 'simulator:/v1', protocol: openai, model: big-model}\n"
    )
    return path


def test_the_simulator_answers_with_the_recorded_response_of_the_tiers_model(tmp_path: Path) -> None:
    run = RecordedRun.prepare(table_csv(tmp_path), load_config(config_file(tmp_path), state_dir=tmp_path / "s", environ={}))

    async def ask() -> tuple[list[str], list[str]]:
        async with Orchestrator.start(run.config) as orch:
            small = [(await orch.generate(Request.prompt(p, tier="small"))).text for p in PROMPTS[:2]]
            other = [(await orch.generate(Request.prompt("not in the table", tier="big"))).text]
        return small, other

    small, other = anyio.run(ask)
    assert small == ["small says 0", "small says 1"]
    assert other[0].startswith("[big-model]")  # not recorded: the usual synthetic answer


def test_always_strongest_is_priced_exactly_as_the_engine_charges_it(tmp_path: Path) -> None:
    run = RecordedRun.prepare(table_csv(tmp_path), load_config(config_file(tmp_path), state_dir=tmp_path / "s", environ={}))
    pinned = [attrs.evolve(r, tier="big") for r in run.requests()]

    async def go() -> list[object]:
        async with Orchestrator.start(run.config) as orch:
            return list(await orch.generate_batch(pinned))

    outcomes = anyio.run(go)
    graded = run.grade(outcomes)  # type: ignore[arg-type]
    assert graded["accuracy"] == 1.0
    assert graded["cost_nd"] == graded["baselines"]["always-strongest"]["cost_nd"] > 0
    assert graded["baselines"]["always-cheapest"]["accuracy"] == pytest.approx(0.5)


def test_orchestrator_run_over_a_table_prints_accuracy_next_to_both_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--config", str(config_file(tmp_path)), "--requests", str(table_csv(tmp_path)), "--state-dir", str(tmp_path / "s")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 prompts graded" in out and "always-cheapest (small)" in out and "always-strongest (big)" in out
    assert main(args + ["--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)["recorded"]
    assert recorded["prompts"] == 6 and 0.5 <= recorded["accuracy"] <= 1.0


def test_a_table_is_told_apart_from_a_request_workload(tmp_path: Path) -> None:
    (tmp_path / "w.jsonl").write_text('{"prompt": "hi"}\n')
    (tmp_path / "t.jsonl").write_text('{"prompt": "hi", "outcomes": {"a": 1}}\n')
    assert not is_outcome_table(tmp_path / "w.jsonl") and is_outcome_table(tmp_path / "t.jsonl")
    assert is_outcome_table(tmp_path / "any.csv")


def test_bad_recorded_sections_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping with `table`"):
        world_from_dict({"models": {}})
    with pytest.raises(ConfigError, match="not in"):
        world_from_dict({"table": str(table_csv(tmp_path)), "models": {"served": "nobody"}})
    (tmp_path / "bare.csv").write_text("prompt,a\np,True\n")
    with pytest.raises(ConfigError, match="no response columns"):
        RecordedWorld.load(tmp_path / "bare.csv")


def test_a_mapping_lets_a_served_model_stand_for_a_table_model(tmp_path: Path) -> None:
    world = world_from_dict({"table": str(table_csv(tmp_path)), "models": {"gpt-x": "big-model"}})
    assert world.answer([("system", "s"), ("user", PROMPTS[3])], "gpt-x") == "big says 3"
    assert world.answer([("user", PROMPTS[3])], "unknown-model") is None

"""A/B tests of routing strategies: a stable split, arms from the config, and `stats --by arm` telling them apart."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from actors.errors import ConfigError
from actors.messages import Request
from actors.policy.experiments import arm_for
from actors.policy.settings import Arm, EstimatorSettings, Experiments
from orchestrator import Orchestrator
from orchestrator.cli.main import main
from orchestrator.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
LEVELS = (("simple", 0.3), ("medium", 0.6), ("complex", 0.85), ("breakthrough", 0.95))
RULES = EstimatorSettings("auto", {}, LEVELS)


def test_the_split_is_stable_and_follows_the_weights() -> None:
    even = Experiments("request", (Arm("a", RULES), Arm("b", RULES)))
    requests = [Request.prompt("x", request_id=f"r{i}") for i in range(4000)]
    first = [arm_for(even, r) for r in requests]
    assert first == [arm_for(even, r) for r in requests], "the same key, the same arm, every time"
    assert 0.46 < first.count(0) / 4000 < 0.54
    weighted = Experiments("request", (Arm("a", RULES, 3), Arm("b", RULES, 1)))
    assert 0.71 < [arm_for(weighted, r) for r in requests].count(0) / 4000 < 0.79
    by_task = Experiments("task", (Arm("a", RULES), Arm("b", RULES)))
    samples = [Request.prompt("same", request_id=f"s{i}", metadata={"task_id": "t7"}) for i in range(20)]
    assert len({arm_for(by_task, r) for r in samples}) == 1, "every sample of a task on one strategy"


ARMS = """  routing:
    experiments:
      split_by: request
      arms:
        cheap:
          thresholds: {simple: 0.97, medium: 0.98, complex: 0.99, breakthrough: 1.0}
        strong:
          thresholds: {simple: 0.001, medium: 0.002, complex: 0.003, breakthrough: 1.0}
"""


def _config(tmp_path: Path, arms: str = ARMS) -> Path:
    path = tmp_path / "ab.yaml"
    path.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n{arms}")
    return path


def test_arms_come_from_the_config_and_a_bad_arm_is_named(tmp_path: Path) -> None:
    experiments = load_config(_config(tmp_path), environ={}).engine.router.experiments
    assert experiments is not None and [a.name for a in experiments.arms] == ["cheap", "strong"]
    assert experiments.arms[1].estimator.thresholds[0] == ("simple", 0.001)
    renamed = ARMS.replace("{simple: 0.001", "{easy: 0.001")
    with pytest.raises(ConfigError, match=r"arms\.strong\.thresholds: must name the same levels"):
        load_config(_config(tmp_path, renamed), environ={})
    lonely = ARMS.split("        strong:")[0]
    with pytest.raises(ConfigError, match="needs two or more arms"):
        load_config(_config(tmp_path, lonely), environ={})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_arm_better_by_construction_is_shown_better_with_an_interval_excluding_zero(
    anyio_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stronger arm's answers are scored higher (0.8 against 0.3, ± 0.2 noise): the comparison must see it."""
    config = _config(tmp_path)
    state = tmp_path / "state"
    noise = random.Random(3)
    async with Orchestrator.start(load_config(config, state_dir=state, environ={})) as orch:
        results = await orch.generate_batch([Request.prompt(f"Fix the failing test {i} in parser.py") for i in range(200)])
        for result in results:
            assert not isinstance(result, Exception)
            orch.feedback(result.request_id, (0.8 if result.decision.arm == "strong" else 0.3) + noise.uniform(-0.2, 0.2))
    assert {r.decision.arm for r in results} == {"cheap", "strong"}  # type: ignore[union-attr]
    assert all((r.decision.arm == "strong") == (r.tier == "tier_3") for r in results)  # type: ignore[union-attr]
    assert main(["stats", "--by", "arm", "--json", "--config", str(config), "--state-dir", str(state)]) == 0
    arms = {row["arm"]: row for row in orjson.loads(capsys.readouterr().out)}
    cheap, strong = arms["cheap"], arms["strong"]
    assert cheap["requests"] + strong["requests"] == 200 and strong["cost_nd"] > cheap["cost_nd"]
    assert strong["difference"] is None, "the best arm is the reference"
    low, high = cheap["difference_interval"]
    assert high < 0 and low < cheap["difference"] < high and cheap["clearly_worse"]
    page = tmp_path / "report.html"
    assert main(["report", "--config", str(config), "--state-dir", str(state), "--out", str(page)]) == 0
    assert "A/B arms: mean feedback score" in page.read_text() and "clearly worse: may be stopped" in page.read_text()


def test_on_a_recorded_world_the_arm_sending_prompts_to_the_better_model_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outcome table where the big model is right on every prompt and the small one on a third: an arm that
    routes everything to the big model is better by construction, and the recorded scores (given as feedback by
    `orchestrator run --requests TABLE`) show it with an interval that excludes zero. (The prompts carry a
    critical pattern: the text rules keep the top level for those.)"""
    from tests.test_recorded_world import config_file

    table = tmp_path / "table.csv"
    lines = ["prompt,small-model,big-model,small-model_response,big-model_response"]
    lines += [f'"Fix the security vulnerability in case {i}",{i % 3 == 0},True,small says {i},big says {i}'
              for i in range(240)]
    table.write_text("\n".join(lines) + "\n")
    base = config_file(tmp_path).read_text()
    config = tmp_path / "ab.yaml"
    config.write_text(base.replace(
        "  routing: {budget_pressure_share: null}\n",
        "  routing:\n    budget_pressure_share: null\n    experiments:\n      split_by: request\n      arms:\n"
        "        small_first: {thresholds: {small: 99.9, big: 100}}\n"
        "        big_first: {thresholds: {small: 1, big: 100}}\n",
    ))
    state = tmp_path / "state"
    assert main(["run", "--config", str(config), "--requests", str(table), "--state-dir", str(state), "--json"]) == 0
    capsys.readouterr()
    assert main(["stats", "--by", "arm", "--json", "--config", str(config), "--state-dir", str(state)]) == 0
    arms = {row["arm"]: row for row in orjson.loads(capsys.readouterr().out)}
    big, small = arms["big_first"], arms["small_first"]
    assert big["requests"] + small["requests"] == 240 and big["difference"] is None
    assert big["mean_score"] == 1.0 and 0.2 < small["mean_score"] < 0.45
    low, high = small["difference_interval"]
    assert high < 0 and small["clearly_worse"], "the small-first arm is clearly worse"

"""The shipped text configurations: plain text routed by the learned text default, coding tasks by the keyword rules."""

from __future__ import annotations

import csv
from pathlib import Path

import anyio
import attrs
import pytest

from actors.errors import ConfigError
from actors.messages import Decision, Request
from actors.policy.estimators import AutoEstimator, LearnedTextEstimator, TextEstimator, build_estimator
from actors.policy.settings import EstimatorSettings
from actors.policy.text_features import coding_signal, text_points
from orchestrator import Orchestrator
from orchestrator.config import load_config

CONFIGS = Path(__file__).parent.parent / "configs"
GSM8K = Path(__file__).parent.parent.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"
SEED_EXAMPLES = {  # the coding-router source's examples and the level it gives each
    "Fix typo in README.md": "simple",
    "Implement user authentication with JWT tokens in auth.py and middleware.py": "medium",
    "Design a distributed system architecture with async message queues for high throughput": "complex",
    "Fix the security vulnerability in production: SQL injection in the login endpoint": "breakthrough",
}
CODE = (
    "Why does this fail?\n```\nx = [1, 2]\nprint(x[2])\n```",
    "What does this print?\ndef f(n):\n    return n * 2\n",
    "Explain this C: #include <stdio.h>",
)
PLAIN = (
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
)


def _text_estimator(config: str | Path) -> TextEstimator:
    return _text_part(load_config(config, environ={}).engine.router.estimator)


def _text_part(settings: EstimatorSettings) -> TextEstimator:
    """The estimator that scores text: the text estimator itself, or an auto estimator's (routing by value ranks
    by the same one; `test_routing_by_value_ranks_plain_text_by_the_model` sees it through the engine)."""
    estimator = build_estimator(attrs.evolve(settings, value_lambda=None))
    return estimator.text if isinstance(estimator, AutoEstimator) else estimator  # type: ignore[return-value]


def _gsm8k_prompts(count: int) -> list[str]:
    with GSM8K.open(newline="") as handle:
        return [row["prompt"] for row, _ in zip(csv.DictReader(handle), range(count))]


def test_a_coding_signal_is_a_software_keyword_a_file_name_or_code_and_plain_text_has_none() -> None:
    for text in (*SEED_EXAMPLES, *CODE):
        assert coding_signal(text, text_points(text)[2]), text
    assert coding_signal("Fix typo in README.md", {}) == "a file name", "one file scores no points but is a signal"
    assert coding_signal("Rename the variable", {}, files=2) == "a file name", "files given by the caller count"
    for text in PLAIN:
        assert coding_signal(text, text_points(text)[2]) == "", text
    prompts = _gsm8k_prompts(400)
    signalled = [p for p in prompts if coding_signal(p, text_points(p)[2])]
    assert len(signalled) <= 8, signalled  # 2%: "distributed" pounds of carrots and the like


@pytest.mark.parametrize("config", ["simulated.yaml", "llm_routing.yaml", "coding_tiers.yaml", "many_models.yaml"])
def test_the_shipped_text_configs_keep_the_rules_for_coding_tasks_and_the_model_for_plain_text(config: str) -> None:
    """A coding task gets exactly the keyword rules' estimate (the seed's levels); plain text gets the learned
    default's, which spreads GSM8K word problems over the levels where the rules put nearly every one on the first (GSM8K is in its
    training data: this shows that plain text is routed by the model; `tools/default_text_router.py` measures how well)."""
    settings = load_config(CONFIGS / config, environ={}).engine.router.estimator
    routed = _text_estimator(CONFIGS / config)
    rules = _text_estimator_without_model(settings)
    assert isinstance(routed, LearnedTextEstimator) and type(rules) is TextEstimator
    for text in (*SEED_EXAMPLES, *CODE):
        mine, theirs = routed.estimate(Request.prompt(text)), rules.estimate(Request.prompt(text))
        assert (mine.score, mine.level, mine.features) == (theirs.score, theirs.level, theirs.features), text
        assert mine.reasons[-1].startswith("coding signal") and mine.reasons[:-1] == theirs.reasons, text
    if config in ("simulated.yaml", "llm_routing.yaml"):
        assert {t: routed.estimate(Request.prompt(t)).level for t in SEED_EXAMPLES} == SEED_EXAMPLES
    for text in PLAIN:
        assert routed.estimate(Request.prompt(text)).reasons[0].startswith("learned text router (text_default.npz)")
    prompts = _gsm8k_prompts(200)
    by_rules = [rules.estimate(Request.prompt(p)).level for p in prompts]
    by_model = [routed.estimate(Request.prompt(p)).level for p in prompts]
    assert by_rules.count(by_rules[0]) >= 0.95 * len(prompts), "the rules find nothing in a word problem"
    assert len(set(by_model)) >= 3 and max(by_model.count(level) for level in by_model) < 0.8 * len(prompts)


def _text_estimator_without_model(settings: EstimatorSettings) -> TextEstimator:
    return _text_part(attrs.evolve(settings, text_model_path=None))


def test_routing_by_value_ranks_plain_text_by_the_model(tmp_path: Path) -> None:
    async def decide() -> tuple[Decision, Decision]:
        config = load_config(CONFIGS / "many_models.yaml", environ={}, state_dir=tmp_path)
        async with Orchestrator.start(config) as orch:
            return orch.decide(Request.prompt(PLAIN[2])), orch.decide(Request.prompt(next(iter(SEED_EXAMPLES))))

    plain, coding = anyio.run(decide)
    assert plain.reasons[0].startswith("learned text router (text_default.npz)")
    assert any(r.startswith("value (λ") for r in plain.reasons)
    assert any(r.startswith("coding signal (a file name)") for r in coding.reasons)


def test_scope_all_gives_the_model_every_text_prompt_and_null_gives_it_none(tmp_path: Path) -> None:
    every = tmp_path / "all.yaml"
    every.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n  complexity_detection:\n"
                     "    text_model_scope: all\n")
    for text in SEED_EXAMPLES:
        assert _text_estimator(every).estimate(Request.prompt(text)).reasons[0].startswith("learned text router")
    off = tmp_path / "off.yaml"
    off.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n  complexity_detection:\n    text_model: null\n")
    assert type(_text_estimator(off)) is TextEstimator
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n  complexity_detection:\n"
                   "    text_model_scope: code\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: llm_routing.complexity_detection.text_model_scope: must be one "
                                          r"of plain, all"):
        load_config(bad, environ={})

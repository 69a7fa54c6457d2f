"""Deciding cheaply: a pinned request is not estimated, a repeated prompt is scored once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from actors.messages import Request
from actors.policy import estimators
from actors.policy.estimators import TextEstimator
from actors.policy.settings import EstimatorSettings
from orchestrator import Orchestrator
from tests.test_end_to_end import simulated

PROMPT = "Refactor the scheduler in scheduler.py and worker.py so the queue never starves; explain the trade-offs."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts a text estimator (the rules, or the learned text model) was run on."""
    calls: list[str] = []
    for cls in (estimators.TextEstimator, estimators.LearnedTextEstimator):
        real = cls._estimate

        def counting(self: Any, text: str, *args: Any, _real: Any = real) -> Any:
            calls.append(text)
            return _real(self, text, *args)

        monkeypatch.setattr(cls, "_estimate", counting)
    return calls


@pytest.mark.anyio
async def test_a_pinned_request_is_not_estimated_and_the_reasons_say_so(
    anyio_backend: str, tmp_path: Path, scored: list[str]
) -> None:
    async with Orchestrator.start(simulated(tmp_path)) as orch:
        by_tier = orch.decide(Request.prompt(PROMPT, tier="tier_2"))
        by_model = orch.decide(Request.prompt(PROMPT + " (model)", model=orch.engine.providers[0].model))
        assert scored == [], "neither pinned request ran the rules"
        routed = orch.decide(Request.prompt(PROMPT))
    assert scored == [PROMPT]
    assert by_tier.tier == "tier_2" and by_tier.reasons[0] == "pinned to tier tier_2: not estimated"
    assert by_tier.level == orch.engine.router.tier_named["tier_2"].level
    assert by_model.reasons[0].startswith("pinned to model") and by_model.reasons[0].endswith("not estimated")
    assert routed.reasons[0].startswith("task type") and routed.score > 0


@pytest.mark.anyio
async def test_with_the_online_learner_a_pinned_request_keeps_its_score(
    anyio_backend: str, tmp_path: Path, scored: list[str]
) -> None:
    """The learner files each answer under its score's band, pinned stages of a cascade included."""
    config = simulated(tmp_path)
    router = config.engine.router
    online = attrs.evolve(config, engine=attrs.evolve(config.engine, router=attrs.evolve(
        router, online=attrs.evolve(router.online, enabled=True))))
    async with Orchestrator.start(online) as orch:
        decision = orch.decide(Request.prompt(PROMPT, tier="tier_2"))
    assert scored == [PROMPT] and decision.score > 0


def test_a_repeated_prompt_is_scored_once_and_a_different_one_again(scored: list[str]) -> None:
    text = TextEstimator(EstimatorSettings("text", {}, (("simple", 30.0), ("complex", 70.0), ("critical", 100.0))))
    first = text.estimate(Request.prompt(PROMPT))
    again = text.estimate(Request.prompt(PROMPT, sample_index=3))
    other = text.estimate(Request.prompt(PROMPT + " Also fix the typo."))
    with_files = text.estimate(Request.prompt(PROMPT, metadata={"files": "12"}))
    assert again is first and len(scored) == 3, "the same prompt is looked up; new text or a file count is scored"
    assert other != first and with_files.features["files"] == 40

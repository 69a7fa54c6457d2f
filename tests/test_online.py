"""Routing that learns from feedback, and the verifier cascade, on scripted providers in virtual time."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from actors.errors import ConfigError, InvalidRequest
from actors.messages import Estimate, Request, Result
from actors.policy.online import OnlineLearner, OnlineSettings
from orchestrator import Orchestrator
from orchestrator.config import Config
from tests.fakes import ScriptedTransport, openai_ok
from tests.test_failover import config, scripted

TIERS = ("tier_1", "tier_2", "tier_3", "tier_4")


def test_static_routing_stands_until_evidence_then_the_band_moves_up() -> None:
    learner = OnlineLearner(OnlineSettings(enabled=True, explore_share=0.0, min_observations=5), TIERS, seed=1)
    assert learner.choose(0.1, "tier_1").tier == "tier_1"
    for i in range(6):
        learner.answered(f"a{i}", learner.band(0.1), "tier_1")
        learner.observe(f"a{i}", 0.0)
        learner.answered(f"b{i}", learner.band(0.1), "tier_2")
        learner.observe(f"b{i}", 1.0)
    moved = learner.choose(0.1, "tier_1")
    assert moved.tier == "tier_2" and "tier_1 fails" in moved.why
    assert learner.choose(0.1, "tier_3").tier == "tier_2", "a cheaper tier known to succeed is taken"
    assert learner.choose(0.9, "tier_3").tier == "tier_3", "other bands are untouched"
    assert not learner.observe("never-answered", 1.0)


def test_exploration_stays_within_its_budget() -> None:
    learner = OnlineLearner(OnlineSettings(enabled=True, explore_share=0.1), TIERS, seed=7)
    for _ in range(10_000):
        learner.choose(0.5, "tier_2")
    assert 0.08 < learner.explored / 10_000 < 0.12


def test_the_posterior_survives_a_snapshot_and_refuses_another_layout() -> None:
    learner = OnlineLearner(OnlineSettings(enabled=True), TIERS)
    learner.answered("r", 2, "tier_3")
    learner.observe("r", 1.0)
    again = OnlineLearner(OnlineSettings(enabled=True), TIERS)
    again.restore(learner.snapshot(), "online.json")
    assert again.statistics()["arms"] == learner.statistics()["arms"]
    with pytest.raises(ConfigError, match="another layout"):
        OnlineLearner(OnlineSettings(enabled=True, bands=3), TIERS).restore(learner.snapshot(), "online.json")


def learning(tmp_path: Path) -> Config:
    cfg = config(tmp_path)
    router = attrs.evolve(cfg.engine.router, online=OnlineSettings(enabled=True, explore_share=0.05, min_observations=4))
    return attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, router=router, rng_seed=5))


def answers() -> dict[str, ScriptedTransport]:
    """tier_1 writes wrong programs, tier_2 right ones."""
    return {
        "Qwen2.5-Coder": ScriptedTransport(default=openai_ok("WRONG")),
        "Gemini 2.5 Flash": ScriptedTransport(default=openai_ok("RIGHT")),
    }


@pytest.mark.trio
async def test_feedback_moves_a_gas_tier_shares_and_is_kept_with_the_state(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    tiers = []
    async with Orchestrator.start(learning(tmp_path), transport_factory=scripted(answers())) as orch:
        for generation in range(6):
            for i in range(10):
                result = await orch.generate(Request.prompt("Fix the typo in README.md", request_id=f"g{generation}-{i}",
                                                            sample_index=generation * 10 + i))
                tiers.append(result.tier)
                orch.feedback(result.request_id, 1.0 if result.text == "RIGHT" else 0.0)
        stats = orch.routing_stats()["online"]
        shares = orch.routing_stats()["tiers"]
    assert tiers[:4] == ["tier_1"] * 4, "the configured routing until evidence accrues"
    assert tiers[-10:].count("tier_2") >= 8, "after feedback the band moved to the tier that succeeds"
    assert shares["tier_2"] > shares["tier_1"]  # type: ignore[index]
    assert stats["observed"] == 60 and stats["exploited"] > 0  # type: ignore[index]
    assert (tmp_path / "routing" / "online.json").stat().st_mode & 0o777 == 0o600
    async with Orchestrator.start(learning(tmp_path), transport_factory=scripted(answers())) as orch:
        resumed = await orch.generate(Request.prompt("Fix the typo in README.md", sample_index=999))
    assert resumed.tier == "tier_2", "the posterior was restored from the state directory"


@pytest.mark.trio
async def test_feedback_that_says_nothing_is_refused_and_leaves_the_learner_as_it_was(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A GA whose fitness came out NaN (a crashed candidate) is told so, and no posterior moves."""
    async with Orchestrator.start(learning(tmp_path), transport_factory=scripted(answers())) as orch:
        result = await orch.generate(Request.prompt("Fix the typo in README.md", request_id="nan-fitness"))
        with pytest.raises(InvalidRequest, match="score must be a finite number"):
            orch.feedback(result.request_id, float("nan"))
        stats = orch.routing_stats()["online"]
        orch.feedback(result.request_id, 1.0)
        after = orch.routing_stats()["online"]
    assert stats["observed"] == 0 and after["observed"] == 1  # type: ignore[index]


@pytest.mark.trio
async def test_the_cascade_escalates_on_rejection_and_prices_every_stage(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    def verifier(result: Result) -> bool:
        return result.text == "RIGHT"

    async with Orchestrator.start(learning(tmp_path), transport_factory=scripted(answers())) as orch:
        verified = await orch.generate_verified(Request.prompt("Fix the typo in README.md"), verifier)
        budget = await orch.budget()
        online = orch.routing_stats()["online"]
    assert verified.accepted and verified.result is not None and verified.result.text == "RIGHT"
    assert [s.tier for s in verified.stages] == ["tier_1", "tier_2"]
    assert [s.verdict for s in verified.stages] == [0.0, 1.0]
    assert verified.cost_nd == budget.settled_nd == sum(s.cost_nd for s in verified.stages)
    assert online["observed"] == 2, "every verdict reached the learner"  # type: ignore[index]


@pytest.mark.trio
async def test_the_cascade_stops_at_its_depth_and_a_broken_verifier_rejects(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    def broken(result: Result) -> bool:
        raise ValueError("cannot parse the program")

    async with Orchestrator.start(learning(tmp_path), transport_factory=scripted(answers())) as orch:
        verified = await orch.generate_verified(Request.prompt("Fix the typo in README.md"), broken, max_depth=2)
    assert not verified.accepted and len(verified.stages) == 2
    assert "verifier failed: ValueError: cannot parse the program" in verified.stages[0].detail


def pessimistic(request: Request) -> Estimate:
    """A custom estimator that predicts the second tier's model will fail too."""
    return Estimate(0.1, "simple", 0.9, ("test",), {"p_success:gemini-2.5-flash": 0.05})


@pytest.mark.trio
async def test_the_cascade_does_not_pay_for_a_tier_predicted_to_fail(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    cfg = learning(tmp_path)
    estimator = attrs.evolve(cfg.engine.router.estimator, kind="tests.test_online:pessimistic")
    cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, router=attrs.evolve(cfg.engine.router, estimator=estimator)))
    async with Orchestrator.start(cfg, transport_factory=scripted(answers())) as orch:
        verified = await orch.generate_verified(Request.prompt("Fix the typo"), lambda r: r.text == "RIGHT",
                                                min_success=0.2)
        budget = await orch.budget()
    assert not verified.accepted and [s.tier for s in verified.stages] == ["tier_1", "tier_2"]
    assert "skipped: predicted success 0.05" in verified.stages[1].detail
    assert budget.settled_nd == verified.stages[0].cost_nd, "nothing was paid for the skipped stage"

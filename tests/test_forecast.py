"""`orchestrator forecast` and `orch.forecast`: cost per tier before spending, from the real router's choices."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.messages import Request
from actors.providers.settings import ProviderSettings
from orchestrator import Orchestrator
from orchestrator.cli.forecast import PLAN_PARENT, ga_plan
from orchestrator.cli.main import main
from orchestrator.config import load_config
from orchestrator.evolution import EvolutionSettings, mutation_requests, seed_requests
from orchestrator.forecast import Routed, Seen, TokenHistory, forecast, route_offline
from orchestrator.workload import arc_requests, arc_tasks

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "simulated.yaml")
CHEAP = ProviderSettings(name="cheap", protocol="openai", base_url="http://x.invalid/v1", model="c",
                         input_price_nd_per_mtok=1_000_000, output_price_nd_per_mtok=2_000_000)
DEAR = ProviderSettings(name="dear", protocol="openai", base_url="http://x.invalid/v1", model="d",
                        input_price_nd_per_mtok=10_000_000, output_price_nd_per_mtok=20_000_000)


def test_without_history_the_prior_prices_the_estimate_and_half_of_max_tokens() -> None:
    """CHEAP costs 1 nd an input token and 2 an output token; DEAR ten times that."""
    routed = [Routed("text", "tier_1", CHEAP, 100, 1000, 5_000), Routed("text", "tier_3", DEAR, 100, 1000, 50_000)]
    result = forecast(routed, TokenHistory(), limit_nd=100_000, remaining_nd=100_000)
    assert [(t.tier, t.requests, t.expected_nd, t.worst_nd, t.from_history) for t in result.tiers] == [
        ("tier_1", 1, 100 * 1 + 500 * 2, 5_000, 0),
        ("tier_3", 1, 100 * 10 + 500 * 20, 50_000, 0),
    ]
    assert result.worst_nd == 55_000 and result.covered and result.downgrade_share == 0.0


def test_requests_past_the_remaining_budget_are_the_share_budget_downgrade_would_move() -> None:
    routed = [Routed("text", "tier_1", CHEAP, 0, 1000, 5_000)] * 4
    result = forecast(routed, TokenHistory(), limit_nd=10**9, remaining_nd=2_000)
    assert result.expected_nd == 4_000 and result.downgrade_share == 0.5
    assert not result.expected_nd <= result.remaining_nd


@pytest.mark.anyio
async def test_after_a_run_its_history_prices_the_same_workload_within_a_few_percent(
    anyio_backend: str, tmp_path: Path
) -> None:
    requests = arc_requests(20)
    async with Orchestrator.start(CONFIG, state_dir=tmp_path) as orch:
        before = await orch.forecast(requests)
        results = await orch.generate_batch(requests)
        after = await orch.forecast(requests)
    spent = sum(r.cost_nd for r in results)  # type: ignore[union-attr]
    assert all(t.from_history == 0 for t in before.tiers) and all(t.from_history == t.requests for t in after.tiers)
    assert abs(after.expected_nd - spent) <= spent * 15 // 100, (after.expected_nd, spent)
    assert after.worst_nd >= spent and before.worst_nd == after.worst_nd


def test_the_command_writes_nothing_and_agrees_with_the_embedded_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["forecast", "--config", CONFIG, "--state-dir", str(state), "--tasks", "20", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert not state.exists(), "a forecast is read-only"
    assert sum(t["requests"] for t in shown["tiers"]) == 20 and shown["worst_case_covered"]
    assert main(["forecast", "--config", CONFIG, "--state-dir", str(state), "--tasks", "2", "--population", "20",
                 "--generations", "10", "--samples", "4", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sum(t["requests"] for t in plan["tiers"]) > 2 * 4, "seeds plus mutations from the stagnation threshold on"


def test_a_budget_that_cannot_cover_the_worst_case_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(f"extends: {CONFIG}\nllm_routing:\n  optimization:\n    budget_limit: 0.001\n")
    assert main(["forecast", "--config", str(tiny), "--state-dir", str(tmp_path / "s"), "--tasks", "20"]) == 3
    assert "does NOT cover" in capsys.readouterr().out


def test_a_model_never_seen_on_a_kind_borrows_what_other_models_used_on_it() -> None:
    from orchestrator.forecast import Seen

    history = TokenHistory({("cheap", "arc"): Seen(answers=4, output_tokens=400, input_tokens=1_000, input_estimate=2_000)})
    assert history.tokens("cheap", "arc", 600, 4_000) == (300, 100, True)
    assert history.tokens("strong", "arc", 600, 4_000) == (300, 100, True), "the kind's answers, not the 2,000-token prior"
    assert history.tokens("strong", "arc", 600, 50) == (300, 50, True), "capped by max_tokens"
    assert history.tokens("strong", "text", 600, 4_000) == (600, 2_000, False), "no model answered this kind: the prior"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([CHEAP, DEAR]), st.integers(0, 3000), st.integers(1, 9)), max_size=12),
       st.integers(0, 200_000))
def test_a_routed_request_with_a_count_forecasts_as_that_many_copies(
    groups: list[tuple[ProviderSettings, int, int]], remaining: int
) -> None:
    """Every figure, the downgrade share's order included, is what the copies one by one would give."""
    history = TokenHistory({("c", "text"): Seen(answers=4, output_tokens=800, input_tokens=900, input_estimate=1000)})
    grouped = [Routed("text", provider.name, provider, prompt, 1000, 7_000, count) for provider, prompt, count in groups]
    copies = [attrs.evolve(one, count=1) for one in grouped for _ in range(one.count)]
    made = [forecast(routed, history, limit_nd=10**9, remaining_nd=remaining) for routed in (grouped, copies)]
    assert attrs.evolve(made[0], made_at=0.0) == attrs.evolve(made[1], made_at=0.0)
    spent, past = 0, 0
    for one in copies:  # the share by its definition: requests that find the expected spending past the budget
        spent += forecast([one], history, limit_nd=10**9, remaining_nd=10**9).expected_nd
        past += spent > remaining
    assert made[0].downgrade_share == (past / len(copies) if copies else 0.0)


def test_a_ga_plan_is_routed_by_kind_and_forecasts_as_every_request_would(tmp_path: Path) -> None:
    """The plan was built and routed one request at a time (100,000 seeds: 7 s); each task's seeds and each
    generation's samples differ only in their ids."""
    config = load_config(Path(CONFIG), state_dir=tmp_path, environ={})
    engine, tasks = config.engine, arc_tasks(3)
    threshold = engine.router.selection.stagnation_threshold
    settings = EvolutionSettings(llm_seed_ratio=0.3, mutation_batch=2)
    every: list[Request] = []
    for task in tasks:
        every += seed_requests(settings, "plan", task, 10)
        for generation in range(threshold + 1, threshold + 4):
            every += mutation_requests(settings, "plan", task, PLAN_PARENT, stagnant_generations=generation - 1,
                                       generation=generation)
    requests, counts = ga_plan(engine, tasks, population=10, generations=threshold + 3, seed_ratio=0.3, samples=2)
    assert len(requests) == 3 * 4 and sum(counts) == len(every) == 3 * (3 + 3 * 2)
    made = [forecast(route_offline(engine, r, c), TokenHistory(), limit_nd=10**9, remaining_nd=25_000_000)
            for r, c in ((requests, counts), (every, None))]
    assert attrs.evolve(made[0], made_at=0.0) == attrs.evolve(made[1], made_at=0.0)
    assert 0 < made[0].downgrade_share < 1


def test_a_plan_too_large_to_route_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match=r"the plan has 4,999,800 kinds of request .*at most 200,000"):
        main(["forecast", "--config", CONFIG, "--tasks", "50", "--population", "10", "--generations", "100000"])

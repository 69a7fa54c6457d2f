"""Pacing: allotments per run, generation and purpose, carry-over, the escalation reserve."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import ConfigError, InvalidRequest
from actors.ledger.core import LedgerCore
from actors.ledger.pacing import PacingPlan, generation_scope, weights_for
from actors.ledger.settings import LedgerSettings
from actors.messages import Request
from actors.money import format_usd
from actors.router.pacing import Pacer
from orchestrator.cli.main import main
from orchestrator.config import load_config
from tests.test_config import GOOD_TIER, write
from tools import pacing_run

DAY = 1_790_000_000.0


def paced(plan: PacingPlan, limit_nd: int = 1000) -> LedgerCore:
    return LedgerCore(LedgerSettings(limit_nd=limit_nd, pacing=plan), wall_clock=lambda: DAY)


def reserve(ledger: LedgerCore, rid: str, amount: int, generation: int, purpose: str = "mutation") -> bool:
    decision, entry = ledger.reserve(rid, "req", "t1", "m", amount, generation, purpose)
    if entry is not None:
        ledger.apply(entry)
    return decision.granted


def settle(ledger: LedgerCore, rid: str, amount: int) -> None:
    entry = ledger.settle(rid, amount)
    assert entry is not None
    ledger.apply(entry)


def booked(ledger: LedgerCore, scope: str) -> int:
    return ledger.settled.get(scope, 0) + ledger.reserved.get(scope, 0)


@given(
    budget=st.integers(0, 10**15),
    weights=st.lists(st.integers(1, 10**6), min_size=1, max_size=60),
    reserve_ppm=st.integers(0, 1_000_000),
)
def test_the_allotments_add_up_to_what_is_split_to_the_nanodollar(budget: int, weights: list[int], reserve_ppm: int) -> None:
    plan = PacingPlan("r", budget, tuple(weights), reserve_nd=budget * reserve_ppm // 1_000_000)
    allotments = [plan.allotment(g) for g in range(len(weights))]
    assert all(a >= 0 for a in allotments)
    assert sum(allotments) == plan.allotted_nd == budget - plan.reserve_nd
    assert plan.allotment(len(weights)) == 0, "a generation past the plan is allotted nothing"


def test_front_loaded_gives_the_first_generation_the_most_and_even_the_same() -> None:
    front = PacingPlan("r", 2_100, weights_for("front_loaded", 20))
    assert [front.allotment(g) for g in (0, 1, 18, 19)] == [200, 190, 20, 10]
    even = PacingPlan("r", 2_000, weights_for("even", 20))
    assert {even.allotment(g) for g in range(20)} == {100}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 400), st.integers(0, 100), st.booleans()), max_size=60),
       st.booleans())
def test_generations_in_order_never_book_past_their_cumulative_allotment(
    steps: list[tuple[int, int, int, bool]], carry_over: bool
) -> None:
    """Whatever reserves and settles a GA makes, generation by generation, no generation exceeds its share."""
    plan = PacingPlan("r", 1000, weights_for("front_loaded", 6), reserve_nd=100, carry_over=carry_over)
    ledger = paced(plan)
    generation, open_ids = 0, []
    for number, (advance, amount, settle_share, escalate) in enumerate(steps):
        generation = min(generation + (advance == 2), 7)
        rid = f"r{number}"
        if reserve(ledger, rid, amount, generation, "escalation" if escalate else "mutation"):
            open_ids.append((rid, amount))
        if open_ids and settle_share % 3 == 0:
            done, reserved = open_ids.pop(0)
            settle(ledger, done, reserved * settle_share // 100)
        for g in range(generation + 1):
            own = booked(ledger, generation_scope("r", g))
            if carry_over:
                upto = sum(booked(ledger, generation_scope("r", i)) for i in range(g + 1))
                assert upto <= plan.cumulative(g)
            else:
                assert own <= plan.allotment(g)
        assert booked(ledger, "purpose:r:escalation") <= plan.reserve_nd
        assert booked(ledger, "run:r") <= plan.budget_nd and booked(ledger, "total") <= 1000


def test_what_a_generation_leaves_carries_over_only_when_configured() -> None:
    for carry_over, granted in ((True, True), (False, False)):
        ledger = paced(PacingPlan("r", 1000, weights_for("even", 4), carry_over=carry_over))
        assert reserve(ledger, "a", 100, 0)
        settle(ledger, "a", 100)  # generation 0 leaves 150 of its 250
        assert reserve(ledger, "b", 400, 1) is granted, "250 of its own and 150 carried over"
        assert not reserve(ledger, "c", 401, 1)


def test_a_generation_never_spends_what_later_generations_were_promised() -> None:
    ledger = paced(PacingPlan("r", 1000, weights_for("even", 4)))
    assert not reserve(ledger, "a", 251, 0)
    assert reserve(ledger, "a", 250, 0)
    settle(ledger, "a", 250)
    decision = ledger.check("t1", 1, DAY, 0, "mutation")
    assert not decision.granted and decision.reason.startswith("gen:r:0000 limit")
    assert ledger.check("t1", 250, DAY, 1, "mutation").granted and not ledger.check("t1", 251, DAY, 1, "mutation").granted


def test_a_generation_whose_money_is_only_reserved_waits_and_one_truly_spent_is_refused() -> None:
    ledger = paced(PacingPlan("r", 1000, weights_for("even", 4)))
    assert reserve(ledger, "a", 250, 0)
    assert ledger.check("t1", 100, DAY, 0, "mutation").waitable
    settle(ledger, "a", 250)
    assert not ledger.check("t1", 100, DAY, 0, "mutation").waitable


def test_escalations_spend_the_reserve_which_generations_cannot_touch() -> None:
    plan = PacingPlan("r", 1000, weights_for("front_loaded", 20), reserve_nd=100)
    ledger = paced(plan)
    for g in range(18):
        assert reserve(ledger, f"m{g}", plan.cumulative(g) - booked(ledger, "run:r"), g)
    assert not reserve(ledger, "greedy", plan.allotment(18) + 1, 18)
    assert reserve(ledger, "m18", plan.allotment(18), 18) and reserve(ledger, "m19", plan.allotment(19), 19)
    assert not reserve(ledger, "late", 1, 19), "everything but the reserve is allotted to generations"
    assert reserve(ledger, "stuck", 100, 18, "escalation"), "the stagnation at generation 18 still finds money"
    assert not reserve(ledger, "more", 1, 18, "escalation")


def test_a_purpose_cap_and_the_run_allotment_bound_requests_without_a_generation() -> None:
    plan = PacingPlan("r", 600, weights_for("even", 2), purpose_caps_nd={"seeding": 200})
    ledger = paced(plan)
    assert not reserve(ledger, "s", 201, 0, "seeding")
    assert reserve(ledger, "s", 200, 0, "seeding")
    assert reserve(ledger, "free", 300, -1, "")
    assert not reserve(ledger, "more", 101, -1, ""), "the run's allotment is 600 of the 1000"
    status = {limit.scope: limit for limit in ledger.status().limits}
    assert status["run:r"].remaining_nd == 100 and status["purpose:r:seeding"].remaining_nd == 0


def test_replaying_the_journal_rebuilds_the_generation_books() -> None:
    plan = PacingPlan("r", 1000, weights_for("even", 4), reserve_nd=100)
    ledger = paced(plan)
    entries = []
    for rid, amount, generation, purpose in (("a", 200, 0, "seeding"), ("b", 250, 1, "mutation"), ("c", 50, 1, "escalation")):
        decision, entry = ledger.reserve(rid, "req", "t1", "m", amount, generation, purpose)
        assert entry is not None
        ledger.apply(entry)
        entries.append(entry)
    entry = ledger.settle("b", 120)
    assert entry is not None
    ledger.apply(entry)
    entries.append(entry)
    replayed = paced(plan)
    for entry in entries:
        replayed.apply(entry)
    assert replayed.status() == ledger.status()
    scopes = {limit.scope: limit for limit in replayed.status().limits}
    assert scopes[generation_scope("r", 1)].settled_nd == 120 and scopes["purpose:r:escalation"].reserved_nd == 50


def test_the_pacer_reads_the_generation_and_purpose_a_request_carries() -> None:
    pacer = Pacer(stagnation_threshold=5)
    assert pacer.pace(Request.prompt("x")) == (-1, "")
    pacer.generation = 7
    assert pacer.pace(Request.prompt("x", metadata={"purpose": "seed"})) == (7, "seeding")
    assert pacer.pace(Request.prompt("x", metadata={"generation": "3", "purpose": "mutation"})) == (3, "mutation")
    assert pacer.pace(Request.prompt("x", stagnation=5, metadata={"purpose": "mutation"})) == (7, "escalation")
    with pytest.raises(InvalidRequest, match="metadata.generation must be a whole number"):
        Request.prompt("x", metadata={"generation": "-1"})


PACED = GOOD_TIER + """  budget:
    pacing:
      run: ga-1
      generations: 4
      schedule: front_loaded
      reserve: 0.2
      purposes: {seeding: 0.25}
"""


def test_the_config_builds_the_plan(tmp_path: Path) -> None:
    plan = load_config(write(tmp_path, PACED), environ={}).engine.ledger.pacing
    assert plan is not None and plan.run == "ga-1" and plan.carry_over
    assert plan.reserve_nd == 200_000_000 and plan.purpose_caps_nd == {"seeding": 250_000_000}
    assert [plan.allotment(g) for g in range(4)] == [320_000_000, 240_000_000, 160_000_000, 80_000_000]
    shares = PACED.replace("generations: 4\n      schedule: front_loaded", "schedule: [1, 1, 2]")
    explicit = load_config(write(tmp_path, shares), environ={}).engine.ledger.pacing
    assert explicit is not None and [explicit.allotment(g) for g in range(3)] == [200_000_000, 200_000_000, 400_000_000]


@pytest.mark.parametrize(("change", "message"), [
    (("schedule: front_loaded", "schedule: [1, 2]"), r"pacing\.generations: must equal the 2 shares"),
    (("schedule: front_loaded", "schedule: backloaded"), r"pacing\.schedule: must be one of"),
    (("reserve: 0.2", "reserve: 1.5"), r"pacing\.reserve: must be a number between 0 and 1"),
    (("{seeding: 0.25}", "{escalation: 0.25}"), r"pacing\.purposes\.escalation: names no purpose"),
    (("run: ga-1", "run: 'a b'"), r"pacing\.run: must be 1 to 64 letters"),
    (("reserve: 0.2", "budget: 5"), r"pacing\.budget: must be within optimization\.budget_limit"),
    (("      generations: 4\n", ""), r"pacing\.generations: required key is missing"),
])
def test_a_broken_pacing_section_names_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, PACED.replace(*change)), environ={})


def _campaign_args(**changes: object) -> argparse.Namespace:
    args = dict(generations=20, schedule="front_loaded", no_carry_over=False, no_pacing=False, budget=0.02,
                reserve=0.1, tasks=3, population=20, seed_ratio=0.2, mutations=12, escalate_at=18, run="campaign")
    args.update(changes)
    return argparse.Namespace(**args)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_paced_twenty_generation_campaign_stays_within_every_allotment(anyio_backend: str, tmp_path: Path) -> None:
    """The embedded API on the simulator: every generation within allotment plus carry-over, and
    the stagnation at generation 18 still finds money; with no pacing the early generations spend it all."""
    outcome = await pacing_run.campaign(_campaign_args(), tmp_path / "paced")
    rows = outcome["rows"]
    assert isinstance(rows, list) and len(rows) == 20
    assert all(r["within"] is not False for r in rows)
    assert all(r["ledger_nd"] == r["spent_nd"] for r in rows if not r["escalation"]), "the ledger's books agree"
    assert rows[18]["spent_nd"] > 0 and rows[18]["answered"] == 36, "the escalation was paid for from the reserve"
    unpaced = await pacing_run.campaign(_campaign_args(no_pacing=True), tmp_path / "unpaced")
    assert unpaced["rows"][18]["spent_nd"] == 0, "without pacing nothing is left for the stagnation"  # type: ignore[index]
    page = tmp_path / "report.html"
    paced = tmp_path / "paced"
    assert main(["report", "--config", str(paced / "paced.yaml"), "--state-dir", str(paced / "state"),
                 "--out", str(page)]) == 0
    text = page.read_text()
    assert "Pacing: planned against spent per generation" in text
    plotted = re.findall(r"<tr><td>(\d+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", text)
    assert [int(g) for g, _, _ in plotted] == list(range(20))
    assert [float(s) for _, _, s in plotted] == [r["spent_nd"] / 1e9 if not r["escalation"] else 0.0 for r in rows]
    assert all(float(s) <= float(p) for _, p, s in plotted)
    escalated = format_usd(rows[18]["spent_nd"], 6)  # type: ignore[arg-type]
    assert f"Escalations spent {escalated} of the $0.002000 reserve" in text


@pytest.mark.parametrize(("weights", "reserve_nd"), [((), 0), ((1, 0, 1), 0), ((1, -2), 0), ((1,), 1001)])
def test_a_plan_without_a_positive_weight_per_generation_or_with_a_reserve_past_the_run_is_refused(
    weights: tuple[int, ...], reserve_nd: int
) -> None:
    with pytest.raises(ValueError, match="positive weight per generation|must lie within"):
        PacingPlan("r", 1000, weights, reserve_nd=reserve_nd)


def test_the_reserve_bounds_escalations_though_the_run_has_money_left() -> None:
    ledger = paced(PacingPlan("r", 1000, weights_for("even", 4), reserve_nd=100))
    assert not reserve(ledger, "big", 101, 2, "escalation"), "900 of the run unspent, but the reserve is 100"
    assert reserve(ledger, "fits", 100, 2, "escalation")
    assert booked(ledger, generation_scope("r", 2)) == 0, "an escalation does not touch its generation's allotment"


def test_scopes_of_another_run_have_no_limit_under_this_plan() -> None:
    """A state directory that served campaign "old" keeps its books; the plan for "new" does not judge them."""
    old = paced(PacingPlan("old", 1000, weights_for("even", 2), reserve_nd=100))
    assert reserve(old, "a", 50, 1, "escalation") and reserve(old, "b", 60, 0)
    new = paced(PacingPlan("new", 1000, weights_for("even", 2), reserve_nd=100))
    new.settled, new.reserved = dict(old.settled), dict(old.reserved)
    shown = {limit.scope for limit in new.status().limits}
    assert shown == {"total"}, "old campaign's run, generation and purpose scopes are not this plan's limits"


def test_a_generations_shown_limit_is_its_allotment_plus_carry_over_and_it_raises_no_alerts() -> None:
    plan = PacingPlan("r", 1000, weights_for("even", 4))
    ledger = LedgerCore(LedgerSettings(limit_nd=1000, pacing=plan, warning_thresholds=(0.5,)), wall_clock=lambda: DAY)
    assert reserve(ledger, "a", 250, 0)
    alerts = ledger.apply(ledger.settle("a", 200)).alerts  # type: ignore[arg-type]
    assert not alerts, "generation 0 spent 80% of its allotment: generations are paced, not alerted on"
    assert reserve(ledger, "b", 50, 1)
    shown = {limit.scope: limit for limit in ledger.status().limits}
    second = shown[generation_scope("r", 1)]
    assert (second.limit_nd, second.settled_nd, second.reserved_nd, second.remaining_nd) == (300, 0, 50, 250)
    assert reserve(ledger, "c", 10, 3), "generation 2 books nothing: 3 inherits what 0 to 2 left"
    fourth = {limit.scope: limit for limit in ledger.status().limits}[generation_scope("r", 3)]
    assert (fourth.limit_nd, fourth.remaining_nd) == (1000 - 200 - 50, 1000 - 200 - 50 - 10)


def test_a_decision_reads_earlier_generations_only_under_carry_over() -> None:
    with_carry = paced(PacingPlan("r", 1000, weights_for("even", 4)))
    without = paced(PacingPlan("r", 1000, weights_for("even", 4), carry_over=False))
    read = with_carry.scopes_read_by("t1", DAY, 2, "mutation")
    assert {generation_scope("r", g) for g in range(3)} <= read and "run:r" in read
    assert not {generation_scope("r", g) for g in range(2)} & without.scopes_read_by("t1", DAY, 2, "mutation")
    assert with_carry.scopes_read_by("t1", DAY, -1, "") == {"total", "run:r"}


def test_money_held_in_an_earlier_generation_is_gone_for_a_later_one() -> None:
    """Carry-over counts what earlier generations hold as spent: a wait for it would only run out."""
    ledger = paced(PacingPlan("r", 1000, weights_for("even", 4)))
    assert reserve(ledger, "a", 250, 0)
    entry = ledger.hold("a")
    assert entry is not None
    ledger.apply(entry)
    decision = ledger.check("t1", 251, DAY, 1, "mutation")
    assert not decision.granted and not decision.waitable, "generation 1 has 250 of its own; 250 more are held"
    assert ledger.check("t1", 250, DAY, 1, "mutation").granted


def test_money_an_earlier_generation_has_in_flight_is_worth_waiting_for_in_a_later_one() -> None:
    """Carry-over: generation 0's open reservation settles (most settle far below their worst case), so a request of
    generation 1 blocked only by it waits rather than being refused."""
    ledger = paced(PacingPlan("r", 1000, weights_for("even", 4)))
    assert reserve(ledger, "a", 250, 0)
    decision = ledger.check("t1", 251, DAY, 1, "mutation")
    assert not decision.granted and decision.waitable, "generation 0's 250 are in flight, not spent"
    assert not ledger.check("t1", 501, DAY, 1, "mutation").waitable, "more than generations 0 and 1 are allotted"


def test_what_is_carried_in_is_what_earlier_generations_were_allotted_and_left() -> None:
    plan = PacingPlan("r", 1000, weights_for("even", 4))
    assert plan.carried_in(0, 0) == 0 and plan.carried_in(1, 100) == 150 and plan.carried_in(2, 500) == 0
    assert PacingPlan("r", 1000, weights_for("even", 4), carry_over=False).carried_in(1, 100) == 0

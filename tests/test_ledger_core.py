"""The ledger's state machine: limits, idempotency, typed errors, alerts, overruns."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from actors.errors import LedgerError
from actors.ledger.core import LedgerCore, restore, snapshot_of
from actors.ledger.pricing import prompt_token_upper_bound, worst_case_nd
from actors.ledger.settings import LedgerSettings
from actors.messages import ChatMessage

DAY = 1_790_000_000.0


def core(**changes: object) -> LedgerCore:
    settings = LedgerSettings(limit_nd=1000, **changes)  # type: ignore[arg-type]
    return LedgerCore(settings, wall_clock=lambda: DAY)


def reserve(ledger: LedgerCore, rid: str, amount: int, tier: str = "t1") -> bool:
    decision, entry = ledger.reserve(rid, "req", tier, "m", amount)
    if entry is not None:
        ledger.apply(entry)
    return decision.granted


def settle(ledger: LedgerCore, rid: str, amount: int) -> None:
    entry = ledger.settle(rid, amount)
    if entry is not None:
        ledger.apply(entry)


def hold(ledger: LedgerCore, rid: str) -> None:
    entry = ledger.hold(rid)
    assert entry is not None, f"{rid} was held already"
    ledger.apply(entry)


def test_reservations_never_let_settled_plus_outstanding_pass_the_limit() -> None:
    ledger = core()
    assert reserve(ledger, "a", 600)
    assert not reserve(ledger, "b", 401)
    assert reserve(ledger, "b", 400)
    status = ledger.status()
    assert status.reserved_nd == 1000 and status.remaining_nd == 0


def test_settle_frees_the_difference_and_release_frees_everything() -> None:
    ledger = core()
    reserve(ledger, "a", 600)
    settle(ledger, "a", 250)
    reserve(ledger, "b", 700)
    ledger.apply(ledger.release("b"))  # type: ignore[arg-type]
    status = ledger.status()
    assert status.settled_nd == 250 and status.reserved_nd == 0 and status.remaining_nd == 750


def test_settle_and_release_are_idempotent() -> None:
    ledger = core()
    reserve(ledger, "a", 100)
    settle(ledger, "a", 90)
    assert ledger.settle("a", 90) is None
    reserve(ledger, "b", 100)
    ledger.apply(ledger.release("b"))  # type: ignore[arg-type]
    assert ledger.release("b") is None
    assert ledger.status().settled_nd == 90


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda l: l.settle("nope", 1), "unknown reservation nope"),
        (lambda l: l.release("nope"), "unknown reservation nope"),
        (lambda l: l.reserve("x", "r", "t", "m", -1), "cannot be negative"),
        (lambda l: l.settle("open", -5), "cannot be negative"),
        (lambda l: l.reserve("open", "r", "t", "m", 1), "already exists"),
        (lambda l: l.hold("nope"), "unknown reservation nope"),
    ],
)
def test_bad_operations_get_typed_errors_and_change_no_money(action: object, message: str) -> None:
    ledger = core()
    reserve(ledger, "open", 100)
    before = ledger.status()
    with pytest.raises(LedgerError, match=message):
        action(ledger)  # type: ignore[operator]
    assert ledger.status() == before


def test_settle_after_release_is_refused() -> None:
    ledger = core()
    reserve(ledger, "a", 100)
    ledger.apply(ledger.release("a"))  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="was released"):
        ledger.settle("a", 10)


def test_an_overrun_is_charged_in_full_and_counted() -> None:
    ledger = core()
    reserve(ledger, "a", 100)
    applied = ledger.apply(ledger.settle("a", 180))  # type: ignore[arg-type]
    assert applied.overrun_nd == 80
    assert ledger.status().settled_nd == 180 and ledger.status().overruns == 1


def test_period_and_tier_caps_apply_alongside_the_total() -> None:
    ledger = core(daily_limit_nd=300, tier_caps_nd={"gpt": 150})
    assert reserve(ledger, "a", 140, tier="gpt")
    assert not reserve(ledger, "b", 20, tier="gpt")
    assert reserve(ledger, "c", 160, tier="cheap")
    assert not reserve(ledger, "d", 1, tier="cheap"), "the day is full"
    scopes = {limit.scope for limit in ledger.status().limits}
    assert {"total", "tier:gpt"} <= scopes and any(s.startswith("day:") for s in scopes)


def test_a_new_utc_day_opens_a_new_daily_allowance_and_a_new_month_a_new_monthly_one() -> None:
    now = [DAY]
    settings = LedgerSettings(limit_nd=10_000, daily_limit_nd=300, monthly_limit_nd=500)
    ledger = LedgerCore(settings, wall_clock=lambda: now[0])
    assert reserve(ledger, "a", 300)
    settle(ledger, "a", 300)
    assert not reserve(ledger, "b", 1), "the day is spent"
    today = datetime.fromtimestamp(DAY, tz=timezone.utc)
    now[0] = DAY + 86_400
    assert datetime.fromtimestamp(now[0], tz=timezone.utc).month == today.month
    assert reserve(ledger, "b", 200), "a new day"
    settle(ledger, "b", 200)
    assert not reserve(ledger, "c", 1), "the month is spent"
    now[0] = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=timezone.utc).timestamp()
    assert reserve(ledger, "c", 300), "a new month"
    assert {limit.scope for limit in ledger.status().limits} >= {
        f"day:{datetime.fromtimestamp(now[0], tz=timezone.utc):%Y-%m-%d}", f"month:{datetime.fromtimestamp(now[0], tz=timezone.utc):%Y-%m}"}


def test_the_daily_allowance_turns_over_at_utc_midnight_to_the_second() -> None:
    midnight = (DAY // 86_400 + 1) * 86_400
    now = [midnight - 1.0]
    ledger = LedgerCore(LedgerSettings(limit_nd=10_000, daily_limit_nd=300), wall_clock=lambda: now[0])
    assert reserve(ledger, "a", 300)
    settle(ledger, "a", 300)
    assert not reserve(ledger, "b", 1), "the day is spent at 23:59:59"
    now[0] = midnight
    assert reserve(ledger, "b", 300), "00:00:00 is a new day"
    assert f"day:{datetime.fromtimestamp(midnight, tz=timezone.utc):%Y-%m-%d}" in {
        limit.scope for limit in ledger.status().limits}


def test_the_month_limit_applies_and_a_refusal_says_nothing_is_left() -> None:
    ledger = core(monthly_limit_nd=250)
    assert reserve(ledger, "a", 250)
    settle(ledger, "a", 250)
    decision, entry = ledger.reserve("b", "req", "t1", "m", 1)
    assert entry is None and not decision.granted and not decision.waitable
    assert decision.remaining_nd == 0 and decision.reason.startswith("month:")


def test_each_warning_threshold_alerts_once_per_crossing() -> None:
    ledger = core(warning_thresholds=(0.5, 0.8))
    alerts = []
    for i, amount in enumerate((400, 200, 100, 100)):
        reserve(ledger, f"r{i}", amount)
        alerts += ledger.apply(ledger.settle(f"r{i}", amount)).alerts  # type: ignore[arg-type]
    assert [(a.scope, a.threshold) for a in alerts] == [("total", 0.5), ("total", 0.8)]


def test_the_prompt_upper_bound_is_never_below_the_simulator_count() -> None:
    from orchestrator.simulator.content import prompt_tokens

    messages = (ChatMessage("system", "abc " * 50), ChatMessage("user", "ünïcode ✓ " * 30))
    assert prompt_token_upper_bound(messages) >= prompt_tokens([(m.role, m.content) for m in messages])


def test_worst_case_adds_the_safety_margin_rounding_up() -> None:
    assert worst_case_nd(1000, 1000, 150_000_000, 150_000_000, 0) == 300_000
    assert worst_case_nd(1000, 1000, 150_000_000, 150_000_000, 100_000) == 330_000
    assert worst_case_nd(1, 0, 1, 0, 0) == 1


def test_an_entry_at_the_snapshots_own_sequence_is_not_applied_again() -> None:
    """Compaction can crash between writing the snapshot and emptying the journal: replay must skip what it holds."""
    settings = LedgerSettings(limit_nd=1000)
    core = LedgerCore(settings)
    first = core._entry("reserve", "a", 1.7e9, 300, "q", "t", "m")
    core.apply(first)
    second = core._entry("reserve", "b", 1.7e9, 200, "q", "t", "m")
    core.apply(second)
    recovered = LedgerCore(settings)
    restore(recovered, snapshot_of(core))
    outcomes = [recovered.apply(first).outcome, recovered.apply(second).outcome]
    assert outcomes == ["duplicate", "duplicate"]
    assert recovered.status().reserved_nd == 500 and recovered.operations == 2


def test_a_grant_reports_what_is_left_after_it_and_a_settle_within_it_is_no_overrun() -> None:
    """The router reads `remaining_nd` for budget pressure; overruns count only settles above the reservation."""
    ledger = core()
    decision, entry = ledger.reserve("a", "req", "t1", "m", 300)
    assert decision.granted and decision.remaining_nd == 700
    assert ledger.apply(entry).overrun_nd == 0  # type: ignore[arg-type]
    settle(ledger, "a", 300)
    reserve(ledger, "b", 100)
    release = ledger.release("b")
    assert release is not None and ledger.apply(release).overrun_nd == 0
    assert ledger.status().overruns == 0


def test_a_hold_counts_as_unreconciled_and_a_reset_clears_everything() -> None:
    ledger = core()
    reserve(ledger, "a", 300)
    hold(ledger, "a")
    assert ledger.status().unreconciled_nd == 300
    assert ledger.apply(ledger.reset()).outcome == "reset"
    status = ledger.status()
    assert (status.settled_nd, status.reserved_nd, status.unreconciled_nd, status.outstanding) == (0, 0, 0, 0)


def test_money_exactly_at_the_limit_once_reservations_settle_is_worth_waiting_for() -> None:
    ledger = core()
    reserve(ledger, "a", 600)
    settle(ledger, "a", 600)
    reserve(ledger, "b", 300)
    decision = ledger.check("t1", 400, DAY)
    assert not decision.granted and decision.waitable, "600 settled + 400 = the limit: it fits once b settles"
    assert decision.remaining_nd == 100


def test_a_scope_whose_limit_was_removed_is_not_shown_as_a_limit() -> None:
    capped = core(tier_caps_nd={"t1": 500})
    reserve(capped, "a", 100)
    settle(capped, "a", 100)
    uncapped = core()
    restore(uncapped, snapshot_of(capped))
    assert [limit.scope for limit in uncapped.status().limits] == ["total"]


def test_a_refusal_reports_nothing_left_when_nothing_is_left() -> None:
    ledger = core()
    reserve(ledger, "a", 1000)
    settle(ledger, "a", 1000)
    decision = ledger.check("t1", 1, DAY)
    assert not decision.granted and not decision.waitable and decision.remaining_nd == 0


def test_held_money_counts_exactly_its_amount_also_after_a_restore() -> None:
    ledger = core()
    reserve(ledger, "a", 300)
    hold(ledger, "a")
    reserve(ledger, "b", 100)
    restored = core()
    restore(restored, snapshot_of(ledger))
    for one in (ledger, restored):
        decision = one.check("t1", 700, DAY)
        assert decision.waitable, "held 300 + 700 = the limit: worth waiting for b (the hold counted once, exactly)"
        assert not one.check("t1", 701, DAY).waitable


@pytest.mark.parametrize("close", ["settle", "release"])
def test_a_held_reservation_once_closed_no_longer_stands_in_the_way_of_waiting(close: str) -> None:
    """Held money is money no settle frees; once the held reservation is settled or released, the money other open
    reservations hold is again worth waiting for, all of it."""
    ledger = core()
    reserve(ledger, "a", 300)
    hold(ledger, "a")
    if close == "settle":
        settle(ledger, "a", 300)
    else:
        ledger.apply(ledger.release("a"))  # type: ignore[arg-type]
    reserve(ledger, "b", 600)
    left = 1000 - (300 if close == "settle" else 0) - 600
    decision = ledger.check("t1", left + 600, DAY)
    assert not decision.granted and decision.waitable, "b's 600 settles or is released: worth waiting for"
    assert not ledger.check("t1", left + 601, DAY).waitable


def test_each_limit_shows_exactly_what_is_settled_reserved_and_left() -> None:
    ledger = core()
    reserve(ledger, "a", 300)
    settle(ledger, "a", 200)
    (total,) = ledger.status().limits
    assert (total.scope, total.limit_nd, total.settled_nd, total.reserved_nd, total.remaining_nd) == (
        "total", 1000, 200, 0, 800)


def test_an_overrun_of_one_nanodollar_counts_and_a_reconciled_hold_is_no_longer_held() -> None:
    ledger = core()
    reserve(ledger, "a", 100)
    settle(ledger, "a", 101)
    assert ledger.status().overruns == 1
    reserve(ledger, "h", 300)
    hold(ledger, "h")
    ledger.reconcile(release=True)
    reserve(ledger, "b", 500)
    decision = ledger.check("t1", 500, DAY)
    assert decision.waitable and decision.remaining_nd == 399, "nothing is held once the hold was reconciled"


def test_a_blocked_reservation_is_told_nothing_is_left_when_everything_is_reserved() -> None:
    ledger = core()
    reserve(ledger, "a", 1000)
    decision = ledger.check("t1", 10, DAY)
    assert decision.waitable and decision.remaining_nd == 0


def test_the_first_journaled_entry_is_number_one() -> None:
    """The journal's numbering is its format: another process replays entries from 1 after an empty snapshot."""
    ledger = core()
    _, entry = ledger.reserve("a", "req", "t1", "m", 10)
    assert entry is not None and entry.seq == 1
    ledger.apply(entry)
    fresh = core()
    assert fresh.apply(entry).outcome == "reserved"


def test_a_free_answer_settles_at_zero() -> None:
    """A local model's answer costs nothing: settling 0 closes the reservation and frees all of it."""
    ledger = core()
    reserve(ledger, "a", 300)
    settle(ledger, "a", 0)
    status = ledger.status()
    assert (status.settled_nd, status.reserved_nd, status.outstanding) == (0, 0, 0)


def test_exactly_closed_memory_closed_ids_are_remembered() -> None:
    ledger = core(closed_memory=2)
    for rid in ("a", "b", "c"):
        reserve(ledger, rid, 10)
        settle(ledger, rid, 5)
    assert ledger.settle("b", 5) is None, "the second most recent close is still a duplicate"
    with pytest.raises(LedgerError, match="unknown reservation a"):
        ledger.settle("a", 5)
    assert list(ledger.settled_by_reservation) == ["b", "c"], "what the audit reads is bounded alike"

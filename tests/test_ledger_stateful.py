"""Random reserve/settle/release/compact/restart/power-cut sequences against a simple model.

The ledger core and its journal (over storage that loses unsynced bytes at a power
cut) must agree with the model after every step, and settled + outstanding must never
pass the limit. A refusal is worth waiting for exactly when open reservations that
are not held stand in the way; `reconcile` decides the held ones for good. What a
restart reads from a compaction's snapshot must answer as the journal did: a repeated settle or release is still a no-op, overruns and warnings are
still counted once, and the audit still finds what each reservation settled.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.errors import LedgerError
from actors.ledger.actor import open_core
from actors.ledger.core import snapshot_of
from actors.ledger.journal import MemoryStorage, commit_frame, compact, frame
from actors.ledger.settings import LedgerSettings

LIMIT = 10_000
TIER_CAP = 4_000
WARN_AT = 0.25
SETTINGS = LedgerSettings(limit_nd=LIMIT, tier_caps_nd={"gpt": TIER_CAP}, warning_thresholds=(WARN_AT,))


class Model:
    def __init__(self) -> None:
        self.outstanding: dict[str, tuple[int, str]] = {}
        self.held: set[str] = set()
        self.settled = 0
        self.settled_gpt = 0
        self.closed: dict[str, str] = {}
        self.settled_by_reservation: dict[str, int] = {}
        self.overruns = 0
        self.excess = 0
        self.excess_gpt = 0
        self.warned: set[str] = set()

    def copy(self) -> "Model":
        other = Model()
        other.outstanding, other.held = dict(self.outstanding), set(self.held)
        other.settled, other.settled_gpt = self.settled, self.settled_gpt
        other.closed, other.settled_by_reservation = dict(self.closed), dict(self.settled_by_reservation)
        other.overruns, other.excess, other.excess_gpt = self.overruns, self.excess, self.excess_gpt
        other.warned = set(self.warned)
        return other

    def allows(self, amount: int, tier: str) -> bool:
        if self.settled + sum(a for a, _ in self.outstanding.values()) + amount > LIMIT:
            return False
        if tier == "gpt":
            gpt = self.settled_gpt + sum(a for a, t in self.outstanding.values() if t == "gpt")
            return gpt + amount <= TIER_CAP
        return True

    def reached(self) -> set[str]:
        """The limits whose settled money has reached the warning threshold."""
        return ({"total"} if self.settled >= WARN_AT * LIMIT else set()) | (
            {"tier:gpt"} if self.settled_gpt >= WARN_AT * TIER_CAP else set())

    def could_wait(self, amount: int, tier: str) -> bool:
        """Whether the amount fits once every open reservation that is not held is settled at nothing."""
        held = [self.outstanding[rid] for rid in self.held]
        if self.settled + sum(a for a, _ in held) + amount > LIMIT:
            return False
        return tier != "gpt" or self.settled_gpt + sum(a for a, t in held if t == "gpt") + amount <= TIER_CAP


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.storage = MemoryStorage()
        self.core = open_core(SETTINGS, self.storage)
        self.model = Model()
        self.durable = Model()
        self.counter = 0

    def _log(self, entry: object) -> tuple[object, ...]:
        applied = self.core.apply(entry)  # type: ignore[arg-type]
        self.storage.append(commit_frame(frame(entry)))  # type: ignore[arg-type]
        return applied.alerts

    @rule(amount=st.integers(0, 3000), tier=st.sampled_from(["cheap", "gpt"]))
    def reserve(self, amount: int, tier: str) -> None:
        self.counter += 1
        rid = f"r{self.counter}"
        decision, entry = self.core.reserve(rid, "req", tier, "m", amount)
        assert decision.granted == self.model.allows(amount, tier)
        assert decision.granted or decision.waitable == self.model.could_wait(amount, tier)
        if entry is not None:
            self._log(entry)
            self.model.outstanding[rid] = (amount, tier)

    @precondition(lambda self: self.model.outstanding)
    @rule(data=st.data(), share=st.floats(0, 1.5))
    def settle(self, data: st.DataObject, share: float) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.outstanding)))
        amount, tier = self.model.outstanding.pop(rid)
        self.model.held.discard(rid)
        actual = int(amount * share)
        alerts = self._log(self.core.settle(rid, actual))
        self.model.settled += actual
        if tier == "gpt":
            self.model.settled_gpt += actual
        self.model.closed[rid] = "settled"
        self.model.settled_by_reservation[rid] = actual
        self.model.overruns += actual > amount
        self.model.excess += max(0, actual - amount)
        if tier == "gpt":
            self.model.excess_gpt += max(0, actual - amount)
        reached = self.model.reached() if tier == "gpt" else self.model.reached() - {"tier:gpt"}  # a settle's own limits
        assert sorted((a.scope, a.threshold) for a in alerts) == [(scope, WARN_AT) for scope in sorted(reached - self.model.warned)], (
            "a warning fires once per limit, when what is settled against it first reaches it")
        self.model.warned |= reached
        assert self.core.settle(rid, actual) is None, "a repeated settle changes nothing"

    @precondition(lambda self: self.model.outstanding)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.outstanding)))
        self.model.outstanding.pop(rid)
        self.model.held.discard(rid)
        self._log(self.core.release(rid))
        self.model.closed[rid] = "released"
        assert self.core.release(rid) is None

    @precondition(lambda self: self.model.closed)
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        """A caller retrying after a restart: a settled reservation settles again as a no-op and cannot be released;
        a released one the other way round."""
        rid = data.draw(st.sampled_from(sorted(self.model.closed)))
        if self.model.closed[rid] == "settled":
            assert self.core.settle(rid, 1) is None
            with pytest.raises(LedgerError):
                self.core.release(rid)
        else:
            assert self.core.release(rid) is None
            with pytest.raises(LedgerError):
                self.core.settle(rid, 1)

    @precondition(lambda self: self.model.held)
    @rule(release=st.booleans())
    def reconcile(self, release: bool) -> None:
        """`budget reconcile`: every held reservation charged at what it reserved, or released; the actor journals
        the entries the core returns (and has applied)."""
        for entry in self.core.reconcile(release):
            self.storage.append(commit_frame(frame(entry)))
        for rid in sorted(self.model.held):
            amount, tier = self.model.outstanding.pop(rid)
            self.model.closed[rid] = "released" if release else "settled"
            if not release:
                self.model.settled += amount
                self.model.settled_gpt += amount if tier == "gpt" else 0
                self.model.settled_by_reservation[rid] = amount
        self.model.held.clear()
        self.model.warned |= self.model.reached()

    @rule()
    def compact(self) -> None:
        """What the actor does every `snapshot_every` commits: the state becomes a snapshot, the journal starts anew."""
        self.storage.sync()
        self.durable = self.model.copy()
        compact(self.storage, snapshot_of(self.core))

    @rule()
    def acknowledge(self) -> None:
        """A group commit: everything so far is on disk and may be answered."""
        self.storage.sync()
        self.durable = self.model.copy()

    @rule()
    def restart(self) -> None:
        self.storage.sync()
        self.durable = self.model.copy()
        self.core = open_core(SETTINGS, self.storage)
        self.model.held = self.durable.held = set(self.model.outstanding)

    @rule()
    def power_cut(self) -> None:
        self.storage.power_cut()
        self.core = open_core(SETTINGS, self.storage)
        self.model = self.durable.copy()
        self.model.held = set(self.model.outstanding)

    @invariant()
    def agrees_with_the_model(self) -> None:
        status = self.core.status()
        assert status.settled_nd == self.model.settled
        assert status.reserved_nd == sum(a for a, _ in self.model.outstanding.values())
        assert status.unreconciled_nd == sum(self.model.outstanding[rid][0] for rid in self.model.held)
        assert status.settled_nd + status.reserved_nd <= LIMIT + self.model.excess, "only an overrun passes the limit"
        assert status.overruns == self.model.overruns
        assert dict(self.core.settled_by_reservation) == self.model.settled_by_reservation, "what the audit reads"
        gpt = next((l for l in status.limits if l.scope == "tier:gpt"), None)
        if gpt is not None:
            assert gpt.settled_nd + gpt.reserved_nd <= TIER_CAP + self.model.excess_gpt


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLedger = LedgerMachine.TestCase

"""Random reserve/settle/release/restart/power-cut sequences against a simple model.

The ledger core and its journal (over storage that loses unsynced bytes at a power
cut) must agree with the model after every step, and settled + outstanding must never
pass the limit.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.ledger.actor import open_core
from actors.ledger.journal import MemoryStorage, commit_frame, frame
from actors.ledger.settings import LedgerSettings

LIMIT = 10_000
TIER_CAP = 4_000
SETTINGS = LedgerSettings(limit_nd=LIMIT, tier_caps_nd={"gpt": TIER_CAP})


class Model:
    def __init__(self) -> None:
        self.outstanding: dict[str, tuple[int, str]] = {}
        self.settled = 0
        self.settled_gpt = 0

    def copy(self) -> "Model":
        other = Model()
        other.outstanding = dict(self.outstanding)
        other.settled, other.settled_gpt = self.settled, self.settled_gpt
        return other

    def allows(self, amount: int, tier: str) -> bool:
        if self.settled + sum(a for a, _ in self.outstanding.values()) + amount > LIMIT:
            return False
        if tier == "gpt":
            gpt = self.settled_gpt + sum(a for a, t in self.outstanding.values() if t == "gpt")
            return gpt + amount <= TIER_CAP
        return True


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.storage = MemoryStorage()
        self.core = open_core(SETTINGS, self.storage)
        self.model = Model()
        self.durable = Model()
        self.counter = 0

    def _log(self, entry: object) -> None:
        self.core.apply(entry)  # type: ignore[arg-type]
        self.storage.append(commit_frame(frame(entry)))  # type: ignore[arg-type]

    @rule(amount=st.integers(0, 3000), tier=st.sampled_from(["cheap", "gpt"]))
    def reserve(self, amount: int, tier: str) -> None:
        self.counter += 1
        rid = f"r{self.counter}"
        decision, entry = self.core.reserve(rid, "req", tier, "m", amount)
        assert decision.granted == self.model.allows(amount, tier)
        if entry is not None:
            self._log(entry)
            self.model.outstanding[rid] = (amount, tier)

    @precondition(lambda self: self.model.outstanding)
    @rule(data=st.data(), share=st.floats(0, 1))
    def settle(self, data: st.DataObject, share: float) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.outstanding)))
        amount, tier = self.model.outstanding.pop(rid)
        actual = int(amount * share)
        self._log(self.core.settle(rid, actual))
        self.model.settled += actual
        if tier == "gpt":
            self.model.settled_gpt += actual
        assert self.core.settle(rid, actual) is None, "a repeated settle changes nothing"

    @precondition(lambda self: self.model.outstanding)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.outstanding)))
        self.model.outstanding.pop(rid)
        self._log(self.core.release(rid))
        assert self.core.release(rid) is None

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

    @rule()
    def power_cut(self) -> None:
        self.storage.power_cut()
        self.core = open_core(SETTINGS, self.storage)
        self.model = self.durable.copy()

    @invariant()
    def agrees_with_the_model(self) -> None:
        status = self.core.status()
        assert status.settled_nd == self.model.settled
        assert status.reserved_nd == sum(a for a, _ in self.model.outstanding.values())
        assert status.settled_nd + status.reserved_nd <= LIMIT
        gpt = next((l for l in status.limits if l.scope == "tier:gpt"), None)
        if gpt is not None:
            assert gpt.settled_nd + gpt.reserved_nd <= TIER_CAP


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLedger = LedgerMachine.TestCase

"""Pacing: a GA campaign's money split across its generations and purposes.

A campaign of 50 generations must not spend its whole budget in generation 3. The
plan gives the run an allotment (`run:NAME`), keeps a reserve back for stagnation
escalations (`purpose:NAME:escalation`), and splits the rest across the
generations (`gen:NAME:G`) evenly, front-loaded (generation g of G weighs G - g), or
by explicit shares. Each is a ledger scope like the daily and monthly limits, so the
same rule admits, queues or refuses a reservation against it.

Carry-over: with it, what a generation left is the next one's to spend. A
generation's scope then counts everything the run's generations booked up to it
against everything allotted up to it (cumulative), so a generation may spend its
own allotment plus whatever earlier ones left, and never what later ones were
promised. Without it, each generation has exactly its allotment.

Escalations (requests whose GA has stagnated to the router's threshold) do not draw
on generation allotments: they spend the reserve, so a stagnation at generation 18
still finds money however eagerly generations 0 to 17 spent theirs. Requests of
the run with no generation count against the run's allotment alone.

Every allotment is exact integer nanodollars: cumulative allotments are floors of
one product, so the generations' allotments add up to the amount split, always.
"""

from __future__ import annotations

import attrs

NO_GENERATION = -1


def generation_scope(run: str, generation: int) -> str:
    return f"gen:{run}:{generation:04d}"


def parse_generation_scope(scope: str) -> tuple[str, int] | None:
    """The run and generation of a `gen:` scope; None for any other scope."""
    kind, _, rest = scope.partition(":")
    if kind != "gen":
        return None
    run, _, generation = rest.rpartition(":")
    return run, int(generation)


@attrs.frozen
class PacingPlan:
    run: str
    budget_nd: int
    """The run's allotment: what every request of the run together may spend."""
    weights: tuple[int, ...]
    """One positive weight per planned generation; a generation's share is its weight over the sum."""
    reserve_nd: int = 0
    """Kept out of the generations' allotments, for stagnation escalations."""
    carry_over: bool = True
    purpose_caps_nd: dict[str, int] = attrs.field(factory=dict)
    """Optional caps per purpose (seeding, mutation); escalation's is the reserve."""

    def __attrs_post_init__(self) -> None:
        if not self.weights or min(self.weights) <= 0:
            raise ValueError(f"pacing needs one positive weight per generation, not {self.weights}")
        if not 0 <= self.reserve_nd <= self.budget_nd:
            raise ValueError(f"the reserve ({self.reserve_nd} nd) must lie within the run's {self.budget_nd} nd")

    @property
    def generations(self) -> int:
        return len(self.weights)

    @property
    def allotted_nd(self) -> int:
        """What the generations share: the run's allotment less the reserve."""
        return self.budget_nd - self.reserve_nd

    def cumulative(self, generation: int) -> int:
        """Allotted to generations 0..generation together; a generation past the plan adds nothing."""
        if generation < 0:
            return 0
        upto = sum(self.weights[: generation + 1])
        return self.allotted_nd * upto // sum(self.weights)

    def allotment(self, generation: int) -> int:
        return self.cumulative(generation) - self.cumulative(generation - 1)

    def carried_in(self, generation: int, spent_before_nd: int) -> int:
        """What earlier generations left to `generation` when they spent `spent_before_nd` (0 without carry-over)."""
        return self.cumulative(generation - 1) - spent_before_nd if self.carry_over else 0

    def scopes(self, generation: int, purpose: str) -> tuple[str, ...]:
        """The scopes a request of this run books into (besides the total, day, month and tier)."""
        scopes = [f"run:{self.run}"]
        if purpose == "escalation" or purpose in self.purpose_caps_nd:
            scopes.append(f"purpose:{self.run}:{purpose}")
        if generation != NO_GENERATION and purpose != "escalation":
            scopes.append(generation_scope(self.run, generation))
        return tuple(scopes)

    def limit_of(self, kind: str, name: str) -> int | None:
        """The fixed limit of a `run:` or `purpose:` scope (a generation's depends on the books)."""
        if kind == "run":
            return self.budget_nd if name == self.run else None
        run, _, purpose = name.rpartition(":")
        if kind != "purpose" or run != self.run:
            return None
        return self.reserve_nd if purpose == "escalation" else self.purpose_caps_nd.get(purpose)


def weights_for(schedule: str, generations: int) -> tuple[int, ...]:
    """`even`: equal shares; `front_loaded`: generation g of G weighs G - g (the first gets G times the last)."""
    if schedule == "even":
        return (1,) * generations
    if schedule == "front_loaded":
        return tuple(generations - g for g in range(generations))
    raise ValueError(f"unknown pacing schedule {schedule!r} (even, front_loaded, or a list of shares)")

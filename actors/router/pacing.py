"""Which generation and purpose a request books its money under (the ledger's pacing scopes).

The generation is the request's `metadata.generation` (the evolution hooks set it),
else the one the GA last announced with `orch.generation(g)`. The purpose is
escalation when the GA has stagnated long enough that the router escalates (the
same threshold), else `metadata.purpose`: seed or seeding, mutation.
"""

from __future__ import annotations

from actors.ledger.pacing import NO_GENERATION
from actors.messages import Request

_PURPOSES = {"seed": "seeding", "seeding": "seeding", "mutation": "mutation", "escalation": "escalation"}


class Pacer:
    def __init__(self, stagnation_threshold: int) -> None:
        self._stagnation_threshold = stagnation_threshold
        self.generation = NO_GENERATION
        """The generation the GA is in now, for requests that do not name one."""

    def pace(self, request: Request) -> tuple[int, str]:
        metadata = request.metadata
        named = metadata.get("generation")
        generation = self.generation if named is None else int(named)
        if request.stagnation >= self._stagnation_threshold:
            return generation, "escalation"
        return generation, _PURPOSES.get(metadata.get("purpose", ""), "")

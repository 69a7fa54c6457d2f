"""The ledger as the router and the CLI use it: typed calls over the actor's ask."""

from __future__ import annotations

import math

import anyio

from actors.errors import ActorStopped
from actors.ledger.messages import (
    BudgetStatus,
    Hold,
    LedgerAck,
    Reconcile,
    Release,
    Reserve,
    ReserveReply,
    ResetLedger,
    Settle,
    StatusQuery,
)
from actors.ledger.pacing import NO_GENERATION
from actors.runtime.actor import ActorRef


class LedgerClient:
    def __init__(self, ref: ActorRef, timeout: float = math.inf) -> None:
        self._ref = ref
        self._timeout = timeout

    async def reserve(
        self, reservation_id: str, request_id: str, tier: str, model: str, amount_nd: int, wait_s: float = 0.0,
        generation: int = NO_GENERATION, purpose: str = "",
    ) -> ReserveReply:
        """Grant or refuse; a refusal only for reserved money may first wait `wait_s` in the budget queue."""
        return await self._ref.ask(Reserve(reservation_id, request_id, tier, model, amount_nd, wait_s, generation, purpose),
                                   self._timeout + wait_s)

    async def settle(self, reservation_id: str, actual_nd: int, input_tokens: int = 0, output_tokens: int = 0) -> LedgerAck:
        return await self._ref.ask(Settle(reservation_id, actual_nd, input_tokens, output_tokens), self._timeout)

    async def release(self, reservation_id: str) -> LedgerAck:
        return await self._ref.ask(Release(reservation_id), self._timeout)

    def tell_nowait(self, msg: Settle | Release | Hold) -> bool:
        """Close a reservation if the inbox has room now (no await); False when it is full."""
        try:
            self._ref.tell_nowait(msg)
        except anyio.WouldBlock:
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ActorStopped(f"the ledger has stopped; {type(msg).__name__} {msg.reservation_id} not sent") from None
        return True

    async def tell(self, msg: Settle | Release | Hold) -> None:
        """Close a reservation without waiting for its journal record (see docs/LEDGER.md, "answer first")."""
        try:
            await self._ref.tell(msg)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ActorStopped(f"the ledger has stopped; {type(msg).__name__} {msg.reservation_id} not sent") from None

    async def status(self) -> BudgetStatus:
        return await self._ref.ask(StatusQuery(), self._timeout)

    async def reconcile(self, release: bool = False) -> BudgetStatus:
        return await self._ref.ask(Reconcile(release), self._timeout)

    async def reset(self) -> BudgetStatus:
        return await self._ref.ask(ResetLedger(), self._timeout)

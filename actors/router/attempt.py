"""One attempt at one provider: reserve → call → settle, release or hold, as one scope.

No cancellation, timeout or exception can leave a reservation behind. What happens
to the money depends only on whether the request may have been billed:

| how the attempt ends                                          | money    |
|---------------------------------------------------------------|----------|
| the ledger denies the reservation                             | nothing  |
| cancelled, timed out or failed before the provider began it   | release  |
| the provider refused locally (circuit, queue full, no key)    | release  |
| connection refused or connect timeout (nothing was sent)      | release  |
| the provider answered with an error status (4xx, 5xx, 429)    | release  |
| the provider answered with a completion                       | settle   |
| sent, then no usable answer (timeout, dropped connection,     | hold     |
|   malformed 2xx body, provider crashed mid-call)              |          |
| the caller cancelled after the provider began the call        | the call runs to its end or to the |
|                                                               | request's deadline, then as above; |
|                                                               | past the deadline: hold            |

A hold of nothing (a free local model) is a release. A held reservation stays
counted as spent until `orchestrator budget reconcile`:
the provider may have billed it, and the ledger never assumes it did not. When the
attempt stopped waiting while the provider was still answering (its timeout or the
request's deadline), the answer is still taken if it comes (`Call.forward`): it
settles the held reservation on its usage, or releases it if it is an error status,
so the books follow what the provider did instead of waiting for a reconcile. Every
ledger step after the grant runs shielded from cancellation (bounded by the ledger client's ask timeout:
past it the reservation stays outstanding, which the ledger counts as spent, the
safe side), so a caller that gives up still leaves the books exact; the workflow above it then stops (no retries and no
fallbacks for a caller that is gone).
"""

from __future__ import annotations

import enum
import logging
import os
from collections import Counter
from collections.abc import Callable

import anyio
import attrs

from actors.errors import ActorStopped, AskTimeout, LedgerUnavailable, OrchestratorError
from actors.ledger.client import LedgerClient
from actors.ledger.messages import Hold, Release, ReserveReply, Settle
from actors.ledger.pacing import NO_GENERATION
from actors.ledger.pricing import worst_case_nd
from actors.messages import ChatMessage, FailureKind, Request
from actors.money import token_cost_nd
from actors.providers.messages import ProviderCall, ProviderReply
from actors.providers.settings import ProviderSettings
from actors.runtime.actor import ActorRef, Call
from actors.runtime.breaker import Permit
from actors.runtime.circuits import Circuits
from actors.runtime.clock import current_time

log = logging.getLogger(__name__)

UNREACHABLE = frozenset({FailureKind.UNAVAILABLE.value, FailureKind.TIMEOUT.value})
"""Failures that say the provider cannot be reached even when nothing was sent (a refused or timed-out
connection, a provider crashing): a half-open circuit's probe that ends so has failed, and opens it again."""


class MoneyAction(str, enum.Enum):
    SETTLE = "settle"
    RELEASE = "release"
    HOLD = "hold"


def money_action(reply: ProviderReply) -> MoneyAction:
    """The failure table above, for an answer the provider actor gave."""
    if reply.ok:
        return MoneyAction.SETTLE
    if not reply.sent or reply.http_status >= 400:
        return MoneyAction.RELEASE
    return MoneyAction.HOLD


def answer_cost(provider: ProviderSettings, reply: ProviderReply) -> int:
    """What an answer costs at the provider's prices: its reported usage, each side rounded up."""
    return token_cost_nd(reply.input_tokens, provider.input_price_nd_per_mtok) + token_cost_nd(
        reply.output_tokens, provider.output_price_nd_per_mtok)


def new_reservation_id() -> str:
    """Reservation ids are the engine's own: unique, whatever ids callers reuse.

    128 random bits, as hex (a uuid4's 122 bits and its hex form, at a fifth of the
    cost): unique across the processes that share a PostgreSQL ledger too.
    """
    return os.urandom(16).hex()


@attrs.frozen
class Plan:
    """What one attempt sends where."""

    request: Request
    provider: ProviderSettings
    tier: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None
    prompt_tokens: int
    attempt_no: int


@attrs.frozen
class Outcome:
    """How an attempt ended: `reply` is None when nothing was sent (skipped or denied)."""

    reservation_id: str = ""
    amount_nd: int = 0
    reserve: ReserveReply | None = None
    reply: ProviderReply | None = None
    action: MoneyAction | None = None
    cost_nd: int = 0
    skipped: str = ""

    @property
    def denied(self) -> bool:
        return self.reserve is not None and not self.reserve.granted


class AttemptRunner:
    """Runs single attempts; the router's fallback loop decides which ones."""

    def __init__(
        self,
        ledger: LedgerClient,
        providers: dict[str, ActorRef],
        circuits: Circuits,
        *,
        margin_ppm: int,
        budget_wait_s: float = 0.0,
        clock: Callable[[], float] = current_time,
        on_reserved: Callable[[Plan, str, int, ReserveReply, tuple[int, str]], None] | None = None,
        pace: Callable[[Request], tuple[int, str]] | None = None,
    ) -> None:
        self._ledger = ledger
        self._providers = providers
        self._circuits = circuits
        self._margin_ppm = margin_ppm
        self._budget_wait_s = budget_wait_s
        self._clock = clock
        self._on_reserved = on_reserved
        self._pace = pace
        """The generation and purpose a request books under, when the budget is paced."""
        self.late_closed: Counter[str] = Counter()
        """Held reservations closed by a late answer, by action ("settle", "release")."""

    def ready_at(self, provider: str) -> float:
        """When `provider`'s circuit may next take work (see `CircuitBreaker.ready_at`)."""
        return self._circuits.ready_at(provider)

    async def run(self, plan: Plan, deadline: float) -> Outcome:
        """One attempt; returns how it ended, raises `LedgerUnavailable` if the ledger cannot decide."""
        name = plan.provider.name
        permit = self._circuits.acquire(name)
        if permit is None:
            return Outcome(skipped=f"{name}: circuit {self._circuits.state(name).value}")
        amount = worst_case_nd(
            plan.prompt_tokens, plan.max_tokens, plan.provider.input_price_nd_per_mtok,
            plan.provider.output_price_nd_per_mtok, self._margin_ppm,
        )
        reservation_id = new_reservation_id()
        wait_s = max(0.0, min(self._budget_wait_s, deadline - self._clock()))
        pace = (NO_GENERATION, "") if self._pace is None else self._pace(plan.request)
        try:
            granted = await self._reserve(plan, reservation_id, amount, wait_s, pace)
        except BaseException:
            self._circuits.unused(name, permit)
            raise
        if self._on_reserved is not None:
            self._on_reserved(plan, reservation_id, amount, granted, pace)
        if not granted.granted:
            self._circuits.unused(name, permit)
            return Outcome(reservation_id, amount, granted)
        if not self._circuits.admits(name, permit):
            await self._give_up(reservation_id, plan, permit)
            return Outcome(reservation_id, amount, granted, skipped=(
                f"{name}: circuit {self._circuits.state(name).value} while the money was reserved"))
        reply, cancelled, unanswered = await self._call(plan, reservation_id, deadline, permit)
        action = money_action(reply)
        if action is MoneyAction.HOLD and amount == 0:
            action = MoneyAction.RELEASE
        cost = answer_cost(plan.provider, reply) if action is MoneyAction.SETTLE else 0
        try:
            await self._close(reservation_id, action, cost, reply)
        finally:
            if unanswered is not None:
                if action is MoneyAction.HOLD:
                    unanswered.forward(lambda late: self._settle_late(reservation_id, plan.provider, late))
                else:
                    unanswered.close()
        if reply.ok:
            self._circuits.succeeded(name, permit)
        elif reply.sent or reply.failure in UNREACHABLE:
            self._circuits.failed(name, permit, reply.failure)
        else:
            self._circuits.unused(name, permit)
        if cancelled is not None:
            raise cancelled
        return Outcome(reservation_id, amount, granted, reply, action, cost)

    async def _reserve(
        self, plan: Plan, reservation_id: str, amount: int, wait_s: float, pace: tuple[int, str]
    ) -> ReserveReply:
        """Reserve (under `pace`: the generation and purpose), waiting up to `wait_s` for reserved money to settle.

        If the answer is lost (cancelled, timed out), release whatever was granted: a
        release of a reservation still queued withdraws it.
        """
        try:
            return await self._ledger.reserve(
                reservation_id, plan.request.request_id, plan.tier, plan.provider.model, amount, wait_s, *pace
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._forget(reservation_id)
            if isinstance(exc, (ActorStopped, AskTimeout)):
                raise LedgerUnavailable(f"request {plan.request.request_id}: the ledger did not answer ({exc})") from exc
            raise

    async def _forget(self, reservation_id: str) -> None:
        """Release a reservation that may or may not have been granted (its answer was lost).

        Told, not asked: a cancelled caller must not wait on a slow ledger, and the
        inbox is first in, first out, so the release is handled after the reserve.
        """
        try:
            await self._ledger.tell(Release(reservation_id))
        except OrchestratorError:
            log.debug("reservation %s: the ledger is gone; a restart counts it as spent", reservation_id)

    async def _call(
        self, plan: Plan, reservation_id: str, deadline: float, permit: Permit
    ) -> tuple[ProviderReply, BaseException | None, Call | None]:
        """The provider's answer (or a failure standing for it), the cancellation that came meanwhile, and the
        call itself when the provider began it but the deadline came first (its answer may still come: the caller
        forwards it to `_settle_late` once the money is held, or closes it).

        A caller cancelled before the provider began the call gets its reservation
        released and the cancellation at once; after that, the call is waited for
        (shielded, up to the deadline) so that its money is settled on what happened.
        """
        message = ProviderCall(
            plan.request.request_id, plan.attempt_no, plan.messages, plan.max_tokens, plan.temperature,
            plan.request.top_p, plan.request.stop, plan.prompt_tokens + plan.max_tokens,
        )
        provider = self._providers[plan.provider.name]
        try:
            call = provider.call_nowait(message) or await provider.call(message)
        except BaseException as exc:
            if isinstance(exc, ActorStopped):
                return ProviderReply(FailureKind.UNAVAILABLE.value, detail=str(exc), sent=False), None, None
            await self._give_up(reservation_id, plan, permit)
            raise
        answering = False
        try:
            cancelled: BaseException | None = None
            try:
                reply, answering = await self._wait(call, deadline)
            except anyio.get_cancelled_exc_class() as cancelled_now:
                if call.abandon():
                    await self._give_up(reservation_id, plan, permit)
                    raise
                cancelled = cancelled_now
                with anyio.CancelScope(shield=True):
                    reply, answering = await self._wait(call, deadline)
            return reply, cancelled, call if answering else None
        finally:
            if not answering:
                call.close()

    def _settle_late(self, reservation_id: str, provider: ProviderSettings, reply: ProviderReply | None) -> None:
        """The answer to a call the attempt stopped waiting for, whose money it held, came after all: settle the
        reservation on the usage it reports, or release it if the provider refused the call (an error status is not
        billed). No answer (the actor failed the call, or the provider timed out too) leaves it held for
        `budget reconcile`. Runs in the provider actor's task: it only tells the ledger, never waits."""
        action = MoneyAction.HOLD if reply is None else money_action(reply)
        if action is MoneyAction.HOLD:
            return
        assert reply is not None
        message: Settle | Release = (Settle(reservation_id, answer_cost(provider, reply), reply.input_tokens,
                                            reply.output_tokens) if action is MoneyAction.SETTLE
                                     else Release(reservation_id))
        try:
            told = self._ledger.tell_nowait(message)
        except OrchestratorError as exc:
            told, why = False, str(exc)
        else:
            why = "the ledger's inbox is full"
        if told:
            self.late_closed[action.value] += 1
        else:
            log.warning("reservation %s: the late answer's %s was not told (%s); it stays held until reconciled",
                        reservation_id, action.value, why)

    async def _give_up(self, reservation_id: str, plan: Plan, permit: Permit) -> None:
        """Nothing was sent: release the money and the permit."""
        self._circuits.unused(plan.provider.name, permit)
        await self._close(reservation_id, MoneyAction.RELEASE, 0, None)

    async def _wait(self, call: Call, deadline: float) -> tuple[ProviderReply, bool]:
        """The answer, and whether the deadline came while the provider was still answering (it may answer later)."""
        try:
            return await call.result(max(0.0, deadline - self._clock())), False
        except AskTimeout:
            sent = not call.abandon()
            detail = "the request's deadline passed " + (
                "while the provider was answering" if sent else "before the provider began the call"
            )
            return ProviderReply(FailureKind.TIMEOUT.value, detail=detail, sent=sent), sent
        except ActorStopped as exc:
            return ProviderReply(FailureKind.UNAVAILABLE.value, detail=str(exc), sent=call.begun), False

    async def _close(self, reservation_id: str, action: MoneyAction, cost: int, reply: ProviderReply | None) -> None:
        """Settle, release or hold, without waiting for the journal record; never cancelled halfway.

        The caller's answer does not wait for this fsync: if the process died before
        the record is durable, the reservation is recovered as outstanding and counts
        as spent in full until reconciled, so the budget guarantee holds. A ledger
        that is gone leaves it outstanding the same way. With room in the ledger's
        inbox (almost always) the message goes without an await, so nothing can cancel
        it and no shielded scope is needed; a full inbox is waited for, shielded.
        """
        if action is MoneyAction.SETTLE:
            assert reply is not None
            message: Settle | Release | Hold = Settle(reservation_id, cost, reply.input_tokens, reply.output_tokens)
        elif action is MoneyAction.RELEASE:
            message = Release(reservation_id)
        else:
            message = Hold(reservation_id)
        try:
            if not self._ledger.tell_nowait(message):
                with anyio.CancelScope(shield=True):
                    await self._ledger.tell(message)
        except OrchestratorError as exc:
            log.warning(
                "reservation %s: %s failed (%s); it stays outstanding and counts as spent until reconciled",
                reservation_id, action.value, exc,
            )

"""The attempt's money rules: reserve → call → settle, release or hold, whatever interrupts it.

Each test cancels the caller at one await of the attempt (the reserve, the queue for
the provider, the call in flight, the settle) or lets the deadline pass there, and
checks what the ledger was told. Gates (events the test opens) stand in for time,
so the cancellation tests run on both anyio backends without sleeping; the deadline
tests run on trio's virtual clock.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import attrs
import pytest
import trio
import trio.testing

from actors.catalog import CODEC
from actors.errors import ActorStopped, AskTimeout, LedgerUnavailable
from actors.ledger.messages import Hold, Release, ReserveReply, Settle
from actors.messages import FailureKind, Request
from actors.providers.actor import ProviderActor
from actors.providers.messages import ProviderCall, ProviderReply
from actors.providers.settings import ProviderSettings
from actors.router.attempt import AttemptRunner, MoneyAction, Plan, money_action
from actors.runtime.actor import ActorRef, Inbox, ReplyBoard
from actors.runtime.breaker import BreakerSettings, CircuitBreaker, CircuitState
from actors.runtime.circuits import Circuits
from actors.runtime.supervisor import Supervisor
from tests.fakes import ScriptedTransport, openai_error, openai_ok

PROVIDER = ProviderSettings(
    name="p", protocol="openai", base_url="http://provider.invalid/v1", model="m",
    input_price_nd_per_mtok=1_000_000, output_price_nd_per_mtok=2_000_000, max_concurrency=1,
)
REQUEST = Request.prompt("Fix the typo in README.md")


@attrs.define
class FakeLedger:
    """Records what the attempt told the ledger; `gate` holds one operation until opened."""

    ops: list[tuple[str, str]] = attrs.Factory(list)
    gated: str = ""
    gate: anyio.Event = attrs.Factory(anyio.Event)
    waiting: anyio.Event = attrs.Factory(anyio.Event)
    fail_with: Exception | None = None
    grant: bool = True
    waits: list[float] = attrs.Factory(list)
    paces: list[tuple[int, str]] = attrs.Factory(list)
    settled: list[int] = attrs.Factory(list)
    full_for: frozenset[str] = frozenset()
    """Operations that find the inbox full: `tell` waits for `room`, as a real send to a full inbox does."""
    room: anyio.Event = attrs.Factory(anyio.Event)
    stopped: bool = False
    """The ledger actor is gone: what is told raises ActorStopped."""

    async def _step(self, op: str, rid: str) -> None:
        if op == self.gated:
            self.waiting.set()
            await self.gate.wait()
        if self.fail_with is not None and op == "reserve":
            raise self.fail_with
        self.ops.append((op, rid))

    async def reserve(
        self, rid: str, request_id: str, tier: str, model: str, amount: int, wait_s: float = 0.0,
        generation: int = -1, purpose: str = "",
    ) -> ReserveReply:
        await self._step("reserve", rid)
        self.waits.append(wait_s)
        self.paces.append((generation, purpose))
        return ReserveReply(rid, self.grant, 10**9 if self.grant else 0, "" if self.grant else "total limit")

    def tell_nowait(self, msg: object) -> bool:
        """Takes it at once, unless the operation is gated: then the inbox is full and the attempt must wait."""
        op = {Settle: "settle", Release: "release", Hold: "hold"}[type(msg)]
        if self.stopped:
            raise ActorStopped("ledger has stopped")
        if op == self.gated:
            return False
        self.ops.append((op, msg.reservation_id))  # type: ignore[attr-defined]
        if isinstance(msg, Settle):
            self.settled.append(msg.actual_nd)
        return True

    async def tell(self, msg: object) -> None:
        op = {Settle: "settle", Release: "release", Hold: "hold"}[type(msg)]
        if op in self.full_for:
            await self.room.wait()
        await self._step(op, msg.reservation_id)  # type: ignore[attr-defined]

    def kinds(self) -> list[str]:
        return [op for op, _ in self.ops]


@attrs.define
class Rig:
    runner: AttemptRunner
    ledger: FakeLedger
    transport: ScriptedTransport
    providers: dict[str, ActorRef]


@pytest.fixture
async def rig(anyio_backend: str) -> AsyncIterator[Rig]:
    async with make_rig() as made:
        yield made


def plan(attempt_no: int = 1) -> Plan:
    return Plan(REQUEST, PROVIDER, "tier_1", REQUEST.messages, 100, 0.0, 50, attempt_no)


class _RigContext:
    def __init__(self, transport: ScriptedTransport | None = None, budget_wait_s: float = 0.0,
                 environ: dict[str, str] | None = None, provider: ProviderSettings = PROVIDER) -> None:
        self.transport = transport or ScriptedTransport(default=openai_ok())
        self.ledger = FakeLedger()
        self.budget_wait_s = budget_wait_s
        self.environ = environ
        self.provider = provider

    async def __aenter__(self) -> Rig:
        self.supervisor = Supervisor(CODEC)
        provider = self.provider if self.environ is None else attrs.evolve(self.provider, api_key_env="P_KEY")
        ref = self.supervisor.add("p", lambda: ProviderActor(provider, self.transport, failures_to_crash=100,
                                                             environ=self.environ))
        circuits = self.supervisor.circuits(("p",))
        runner = AttemptRunner(
            self.ledger, {"p": ref}, circuits, margin_ppm=0, budget_wait_s=self.budget_wait_s  # type: ignore[arg-type]
        )
        self.tg = anyio.create_task_group()
        await self.tg.__aenter__()
        await self.tg.start(self.supervisor.run)
        return Rig(runner, self.ledger, self.transport, {"p": ref})

    async def __aexit__(self, *exc: object) -> None:
        self.supervisor.stop()
        await self.tg.__aexit__(None, None, None)


def make_rig(transport: ScriptedTransport | None = None, budget_wait_s: float = 0.0,
             environ: dict[str, str] | None = None, provider: ProviderSettings = PROVIDER) -> _RigContext:
    """`environ`: the provider reads its key from P_KEY in it."""
    return _RigContext(transport, budget_wait_s, environ, provider)


async def cancel_during_the_reserve(runner: AttemptRunner, ledger: FakeLedger) -> None:
    """Run one attempt and cancel it while its reserve waits for the ledger's answer; then let the ledger answer."""
    ledger.gated = "reserve"
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run, plan(), 1e9)
        await ledger.waiting.wait()
        tg.cancel_scope.cancel()
    ledger.gate.set()


@pytest.mark.anyio
async def test_cancelled_during_the_reserve_releases_whatever_was_granted(rig: Rig) -> None:
    await cancel_during_the_reserve(rig.runner, rig.ledger)
    assert rig.ledger.kinds()[-1] == "release", "a grant whose answer was lost is released"
    assert rig.transport.calls == [], "nothing was sent"


@pytest.mark.anyio
async def test_a_release_after_a_lost_grant_waits_for_room_in_the_inbox_though_its_caller_is_gone(rig: Rig) -> None:
    """The release is the only record that the grant's money is free: a cancelled caller still sends it."""
    rig.ledger.gated = "reserve"
    rig.ledger.full_for = frozenset({"release"})
    caller = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        async def attempt() -> None:
            with caller:
                await rig.runner.run(plan(), 1e9)

        tg.start_soon(attempt)
        await rig.ledger.waiting.wait()
        caller.cancel()
        rig.ledger.gate.set()
        for _ in range(5):
            await anyio.sleep(0)
        rig.ledger.room.set()
    assert rig.ledger.kinds()[-1] == "release"


@pytest.mark.anyio
async def test_a_ledger_that_does_not_answer_fails_the_attempt_typed(rig: Rig) -> None:
    rig.ledger.fail_with = AskTimeout("ledger did not answer Reserve within 60 s")
    with pytest.raises(LedgerUnavailable, match="the ledger did not answer"):
        await rig.runner.run(plan(), 1e9)
    assert rig.ledger.kinds() == ["release"]


@pytest.mark.anyio
async def test_cancelled_while_queued_for_the_provider_releases_and_never_sends(anyio_backend: str) -> None:
    gate = anyio.Event()
    entered = anyio.Event()
    transport = GatedTransport(gate, entered, default=openai_ok())
    async with make_rig(transport) as rig:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rig.runner.run, plan(1), 1e9)
            await entered.wait()
            second = anyio.CancelScope()

            async def queued() -> None:
                with second:
                    await rig.runner.run(plan(2), 1e9)

            tg.start_soon(queued)
            while len(rig.ledger.ops) < 2:
                await anyio.sleep(0)
            second.cancel()
            for _ in range(5):
                await anyio.sleep(0)
            while_queued = rig.ledger.kinds()
            gate.set()
        assert while_queued == ["reserve", "reserve", "release"], "released while still queued"
        assert len(transport.calls) == 1, "the abandoned call was never sent"
        assert rig.ledger.kinds() == ["reserve", "reserve", "release", "settle"]


@pytest.mark.anyio
async def test_cancelled_after_the_call_left_waits_for_the_answer_and_settles_it(anyio_backend: str) -> None:
    gate = anyio.Event()
    entered = anyio.Event()
    transport = GatedTransport(gate, entered, default=openai_ok(prompt=1000, completion=500))
    async with make_rig(transport) as rig:
        cancelled = False
        async with anyio.create_task_group() as tg:
            async def caller() -> None:
                nonlocal cancelled
                with anyio.CancelScope() as scope:
                    tg.start_soon(_cancel_on, entered, scope)
                    await rig.runner.run(plan(), 1e9)
                cancelled = scope.cancelled_caught

            tg.start_soon(caller)
            await entered.wait()
            for _ in range(5):
                await anyio.sleep(0)
            assert rig.ledger.kinds() == ["reserve"], "the attempt is still waiting for the provider"
            gate.set()
        assert cancelled, "the caller still sees its cancellation"
        assert rig.ledger.kinds() == ["reserve", "settle"], "the provider's usage was settled"


async def _cancel_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


@pytest.mark.anyio
async def test_cancelled_during_the_settle_still_settles(rig: Rig) -> None:
    """A settle that must wait for room in the ledger's inbox is not cancelled halfway."""
    rig.ledger.gated = "settle"
    async with anyio.create_task_group() as tg:
        tg.start_soon(rig.runner.run, plan(), 1e9)
        await rig.ledger.waiting.wait()
        tg.cancel_scope.cancel()
        rig.ledger.gate.set()
    assert rig.ledger.kinds() == ["reserve", "settle"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "action"),
    [
        (openai_ok(), MoneyAction.SETTLE),
        (openai_error(500), MoneyAction.RELEASE),
        (openai_error(429, retry_after="1"), MoneyAction.RELEASE),
        (openai_error(400, "context_length_exceeded"), MoneyAction.RELEASE),
    ],
)
async def test_answered_outcomes_settle_or_release(anyio_backend: str, answer: object, action: MoneyAction) -> None:
    async with make_rig(ScriptedTransport(default=answer)) as rig:  # type: ignore[arg-type]
        outcome = await rig.runner.run(plan(), 1e9)
    assert outcome.action is action
    assert rig.ledger.kinds() == ["reserve", action.value]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "action"),
    [
        (ConnectionRefusedError(111, "refused"), MoneyAction.RELEASE),
        (TimeoutError(), MoneyAction.HOLD),
        (ConnectionResetError(104, "reset by peer"), MoneyAction.HOLD),
    ],
)
async def test_transport_failures_release_only_what_was_never_sent(
    anyio_backend: str, failure: BaseException, action: MoneyAction
) -> None:
    async with make_rig(ScriptedTransport(default=failure)) as rig:
        outcome = await rig.runner.run(plan(), 1e9)
    assert outcome.action is action
    assert rig.ledger.kinds() == ["reserve", action.value]


def test_the_failure_table() -> None:
    assert money_action(ProviderReply("", "text")) is MoneyAction.SETTLE
    assert money_action(ProviderReply("rate_limit", http_status=429)) is MoneyAction.RELEASE
    assert money_action(ProviderReply("unavailable", sent=False)) is MoneyAction.RELEASE
    assert money_action(ProviderReply("timeout", sent=True)) is MoneyAction.HOLD
    assert money_action(ProviderReply("malformed_response", http_status=200)) is MoneyAction.HOLD
    assert money_action(ProviderReply("server_error", http_status=503)) is MoneyAction.RELEASE


@attrs.define
class GatedTransport(ScriptedTransport):
    """Signals `entered` when a call arrives and answers only once `gate` is open."""

    gate: anyio.Event = attrs.Factory(anyio.Event)
    entered: anyio.Event = attrs.Factory(anyio.Event)

    def __init__(self, gate: anyio.Event, entered: anyio.Event, default: object) -> None:
        self.__attrs_init__(default=default, gate=gate, entered=entered)  # type: ignore[attr-defined]

    async def send(self, call: object) -> object:  # type: ignore[override]
        self.entered.set()
        await self.gate.wait()
        return await super().send(call)  # type: ignore[arg-type]


@pytest.mark.trio
async def test_a_hanging_provider_is_held_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    await trio.sleep(50)  # the clock away from zero, where a deadline added to it would read the same
    async with make_rig(ScriptedTransport(default=openai_ok(), delay=3600)) as rig:
        start = trio.current_time()
        outcome = await rig.runner.run(plan(), start + 30)
        elapsed = trio.current_time() - start
    assert elapsed == pytest.approx(30)
    assert outcome.reply is not None and outcome.reply.failure == FailureKind.TIMEOUT.value
    assert outcome.action is MoneyAction.HOLD, "the call left: it may be billed, so it is held"
    assert rig.ledger.kinds() == ["reserve", "hold"]


@pytest.mark.trio
async def test_a_deadline_that_passes_before_the_provider_began_the_call_releases(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Queued behind a hanging call (one slot), the second attempt's deadline passes: nothing left, released."""
    async with make_rig(ScriptedTransport(default=openai_ok(), delay=3600)) as rig:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rig.runner.run, plan(1), start + 100)
            await trio.testing.wait_all_tasks_blocked()
            outcome = await rig.runner.run(plan(2), start + 30)
    assert outcome.reply is not None and not outcome.reply.sent
    assert "before the provider began the call" in outcome.reply.detail
    assert outcome.action is MoneyAction.RELEASE
    assert rig.ledger.kinds() == ["reserve", "reserve", "release", "hold"], "the queued one released, the sent one held"


@pytest.mark.anyio
async def test_an_unknown_outcome_on_a_free_model_holds_nothing(anyio_backend: str) -> None:
    free = attrs.evolve(PROVIDER, input_price_nd_per_mtok=0, output_price_nd_per_mtok=0)
    async with make_rig(ScriptedTransport(default=ConnectionResetError(104, "reset"))) as rig:
        outcome = await rig.runner.run(attrs.evolve(plan(), provider=free), 1e9)
    assert outcome.amount_nd == 0 and outcome.action is MoneyAction.RELEASE
    assert rig.ledger.kinds() == ["reserve", "release"]


@pytest.mark.trio
async def test_the_budget_wait_is_bounded_by_the_deadline_and_a_denial_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await trio.sleep(50)  # the clock away from zero, where a deadline added to it would read the same
    async with make_rig(budget_wait_s=30.0) as rig:
        now = trio.current_time()
        await rig.runner.run(plan(), now + 10.0)
        await rig.runner.run(plan(), now + 100.0)
        rig.ledger.grant = False
        denied = await rig.runner.run(plan(), now + 100.0)
    assert rig.ledger.waits == [pytest.approx(10.0), pytest.approx(30.0), pytest.approx(30.0)]
    assert denied.denied and denied.reply is None and len(rig.transport.calls) == 2


@pytest.mark.anyio
async def test_a_settle_charges_the_reported_usage_at_the_providers_prices(anyio_backend: str) -> None:
    async with make_rig(ScriptedTransport(default=openai_ok(prompt=1000, completion=500))) as rig:
        outcome = await rig.runner.run(plan(), 1e9)
    expected = 1000 * 1 + 500 * 2
    assert outcome.cost_nd == expected and rig.ledger.settled == [expected]
    assert not outcome.denied


@pytest.mark.anyio
async def test_a_released_attempt_costs_nothing(anyio_backend: str) -> None:
    async with make_rig(ScriptedTransport(default=openai_error(500))) as rig:
        outcome = await rig.runner.run(plan(), 1e9)
    assert outcome.action is MoneyAction.RELEASE and outcome.cost_nd == 0 and rig.ledger.settled == []


@pytest.mark.anyio
async def test_a_provider_already_stopped_releases_the_money(anyio_backend: str) -> None:
    """Nothing could have been sent to a provider actor that is gone: released, not held."""
    async with make_rig() as rig:
        pass
    outcome = await rig.runner.run(plan(), 1e9)
    assert outcome.reply is not None and not outcome.reply.sent
    assert outcome.action is MoneyAction.RELEASE and rig.ledger.kinds() == ["reserve", "release"]


class HalfOpen:
    """A runner over `rig`'s provider whose circuit is half-open with one probe permit: a permit an attempt keeps
    shows as the provider being unavailable to every other request until the probe's timeout reopens the circuit."""

    def __init__(self, ledger: FakeLedger, providers: dict[str, ActorRef]) -> None:
        self.now = 1000.0
        self.breaker = CircuitBreaker("p", BreakerSettings(max_restarts=0, cooldown_s=1.0, probe_permits=1))
        self.breaker.record_crash(self.now)
        self.now += 2.0
        circuits = Circuits({"p": self.breaker}, lambda: self.now)
        self.runner = AttemptRunner(ledger, providers, circuits, margin_ppm=0)  # type: ignore[arg-type]

    def free(self) -> bool:
        return self.breaker.state is CircuitState.HALF_OPEN and self.breaker.available(self.now)


@pytest.mark.anyio
async def test_a_denied_reservation_gives_back_the_probe_permit(rig: Rig) -> None:
    half_open = HalfOpen(rig.ledger, rig.providers)
    rig.ledger.grant = False
    outcome = await half_open.runner.run(plan(), 1e9)
    assert outcome.denied and rig.transport.calls == []
    assert half_open.free(), "the probe was never sent: another request may probe"


@pytest.mark.anyio
async def test_a_reservation_lost_to_cancellation_or_a_silent_ledger_gives_back_the_probe_permit(rig: Rig) -> None:
    half_open = HalfOpen(rig.ledger, rig.providers)
    await cancel_during_the_reserve(half_open.runner, rig.ledger)
    assert half_open.free(), "cancelled during the reserve"
    rig.ledger.gated, rig.ledger.fail_with = "", AskTimeout("ledger did not answer Reserve within 60 s")
    with pytest.raises(LedgerUnavailable):
        await half_open.runner.run(plan(), 1e9)
    assert half_open.free(), "the ledger did not answer"
    assert rig.transport.calls == []


@pytest.mark.anyio
async def test_a_circuit_that_opened_while_the_money_was_reserved_sends_nothing_and_releases(rig: Rig) -> None:
    """The provider crashed while the attempt waited for its reservation: a call now would wait for a restart only
    to be tried on a provider known bad."""
    half_open = HalfOpen(rig.ledger, rig.providers)
    rig.ledger.gated = "reserve"
    async with anyio.create_task_group() as tg:
        async def attempt() -> None:
            outcomes.append(await half_open.runner.run(plan(), 1e9))

        outcomes: list[object] = []
        tg.start_soon(attempt)
        await rig.ledger.waiting.wait()
        half_open.breaker.record_crash(half_open.now)
        rig.ledger.gate.set()
    outcome = outcomes[0]
    assert "while the money was reserved" in outcome.skipped  # type: ignore[attr-defined]
    assert rig.ledger.kinds() == ["reserve", "release"] and rig.transport.calls == []


@pytest.mark.anyio
async def test_cancelled_while_the_providers_inbox_is_full_releases_and_gives_back_the_probe_permit(
    anyio_backend: str,
) -> None:
    inbox = Inbox("p", ReplyBoard(), CODEC, capacity=1)
    assert inbox.ref.call_nowait(ProviderCall("earlier", 1, REQUEST.messages, 100, 0.0, None, (), 150)) is not None
    ledger = FakeLedger()
    half_open = HalfOpen(ledger, {"p": inbox.ref})
    caller = anyio.CancelScope()
    try:
        async with anyio.create_task_group() as tg:
            async def attempt() -> None:
                with caller:
                    await half_open.runner.run(plan(), 1e9)

            tg.start_soon(attempt)
            while not ledger.ops:
                await anyio.sleep(0)
            for _ in range(5):
                await anyio.sleep(0)
            assert ledger.kinds() == ["reserve"], "waiting for room in the provider's inbox (no actor drains it)"
            caller.cancel()
    finally:
        inbox.dispose()
    assert ledger.kinds() == ["reserve", "release"], "nothing was sent"
    assert half_open.free()


@pytest.mark.anyio
async def test_a_call_the_provider_refused_to_send_releases_and_gives_back_the_probe_permit(anyio_backend: str) -> None:
    """A key no HTTP header can carry: the provider actor answers AUTH without sending anything."""
    async with make_rig(environ={"P_KEY": "sk-test\r"}) as rig:
        half_open = HalfOpen(rig.ledger, rig.providers)
        outcome = await half_open.runner.run(plan(), 1e9)
    assert outcome.reply is not None and outcome.reply.failure == FailureKind.AUTH.value and not outcome.reply.sent
    assert outcome.action is MoneyAction.RELEASE and rig.transport.calls == []
    assert half_open.free(), "the provider was never reached: the probe decides nothing"


@pytest.mark.anyio
async def test_a_circuit_that_takes_no_work_skips_the_attempt_before_any_money_is_reserved(rig: Rig) -> None:
    half_open = HalfOpen(rig.ledger, rig.providers)
    assert half_open.breaker.acquire(half_open.now) is not None, "another request holds the one probe"
    outcome = await half_open.runner.run(plan(), 1e9)
    assert outcome.skipped == "p: circuit half_open" and outcome.reserve is None
    assert rig.ledger.ops == [] and rig.transport.calls == []


@pytest.mark.anyio
async def test_each_attempt_reserves_under_an_id_of_its_own(rig: Rig) -> None:
    """Callers reuse request ids (a GA's retries, an agent's); the ledger tells reservations apart by these alone."""
    first, second = await rig.runner.run(plan(), 1e9), await rig.runner.run(plan(), 1e9)
    assert first.reservation_id != second.reservation_id
    assert all(len(o.reservation_id) == 32 and int(o.reservation_id, 16) >= 0 for o in (first, second))


@pytest.mark.trio
@pytest.mark.parametrize(("ledger_state", "why"), [("full", "the ledger's inbox is full"), ("gone", "ledger has stopped")])
async def test_a_late_answer_the_ledger_cannot_take_leaves_the_money_held_and_says_so(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, ledger_state: str, why: str,
) -> None:
    """The provider answers after the attempt held its money, but the ledger cannot be told: the reservation stays
    held (spent, the safe side) for `budget reconcile`, and the log names it."""
    await trio.sleep(50)
    async with make_rig(ScriptedTransport(default=openai_ok(), delay=100)) as rig:
        outcome = await rig.runner.run(plan(), trio.current_time() + 30)
        assert outcome.action is MoneyAction.HOLD
        rig.ledger.gated, rig.ledger.stopped = ("settle", False) if ledger_state == "full" else ("", True)
        with caplog.at_level(logging.WARNING):
            await trio.sleep(200)
    assert rig.ledger.kinds() == ["reserve", "hold"] and not rig.runner.late_closed
    assert f"reservation {outcome.reservation_id}: the late answer's settle was not told ({why})" in caplog.text


@pytest.mark.anyio
async def test_a_settle_the_ledger_is_gone_for_leaves_the_reservation_outstanding_and_says_so(
    anyio_backend: str, caplog: pytest.LogCaptureFixture,
) -> None:
    gate, entered = anyio.Event(), anyio.Event()
    async with make_rig(GatedTransport(gate, entered, default=openai_ok())) as rig:
        async with anyio.create_task_group() as tg:
            outcomes: list[object] = []

            async def attempt() -> None:
                outcomes.append(await rig.runner.run(plan(), 1e9))

            tg.start_soon(attempt)
            await entered.wait()
            rig.ledger.stopped = True
            with caplog.at_level(logging.WARNING):
                gate.set()
    rid = outcomes[0].reservation_id  # type: ignore[attr-defined]
    assert rig.ledger.kinds() == ["reserve"], "nothing more reached the ledger"
    assert f"reservation {rid}: settle failed (ledger has stopped); it stays outstanding" in caplog.text


@pytest.mark.trio
async def test_the_provider_counts_an_attempts_prompt_and_most_output_against_its_token_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Providers count `max_tokens` against tokens per minute when the call arrives: a plan of 50 prompt tokens and
    at most 100 out is 150 of a 150-a-minute budget, so the next call waits for the minute to turn over."""
    await trio.sleep(50)
    async with make_rig(provider=attrs.evolve(PROVIDER, tokens_per_minute=150)) as rig:
        start = trio.current_time()
        await rig.runner.run(plan(1), start + 600)
        first = trio.current_time()
        await rig.runner.run(plan(2), start + 600)
        second = trio.current_time()
    assert first - start < 1 and second - start >= 59, "the second call waited for the first's 150 tokens"

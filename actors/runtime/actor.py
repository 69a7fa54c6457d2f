"""Actors: a name, an inbox of encoded messages, and a run loop.

Messages cross as bytes made by the one codec, so no mutable object is ever shared
between actors. In-process hops decode without per-field type checks (the bytes were
made by the same codec a moment ago); the checks stay at the boundaries where bytes
come from elsewhere: the journal, the telemetry log, the network. `tell` is fire-and-forget; `ask` sends with a correlation id and
waits for the reply on a `ReplyBoard`, raising `AskTimeout` past its deadline or
`ActorStopped` if the actor crashes first. An actor that must not block its inbox
(a provider calling HTTP) hands the work to worker tasks of its own and answers later
with `Inbox.reply`.

Failure isolation: an exception raised while handling one message is that
message's answer (its asker raises it) and the actor goes on serving everyone else.
Only `BrokenInvariant` (the actor's own state can no longer be trusted) or a failure
in a task the actor spawned ends the run loop, for the supervisor to restart it.

`ActorRef.call` is an ask its asker may abandon: the actor calls `Inbox.begin`
before doing anything irreversible (a provider sending an HTTP request), and an
abandoned call is never begun. That is how a cancelled caller knows whether its
request left the machine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors.codec import Codec
from actors.errors import ActorStopped, AskTimeout, HandlerFailed, OrchestratorError
from actors.runtime.clock import current_time
from actors.runtime.deadlines import Deadlines
from actors.runtime.signal import Signal

log = logging.getLogger(__name__)

Envelope = tuple[int, bytes]
"""(correlation id, encoded message); a correlation id of 0 means no reply is wanted."""

BURST = 64
"""Messages an actor serves from its queue before it yields to the other tasks."""


class BrokenInvariant(Exception):
    """Raised by a handler when the actor's own state can no longer be trusted.

    It is the one exception from `handle` that ends the run loop: the supervisor
    restarts the actor, which rebuilds its state from what is durable.
    """


class _Pending:
    __slots__ = ("event", "payload", "error", "target", "begun", "deadline", "timed_out", "forward")

    def __init__(self, target: str) -> None:
        self.event = Signal()
        self.payload: bytes | None = None
        self.error: BaseException | None = None
        self.target = target
        self.begun = False
        self.deadline = math.inf
        self.timed_out = False
        self.forward: Callable[[bytes | None], None] | None = None
        """Who takes the reply (None for a failure) of an ask whose asker stopped waiting but wants it (`Call.forward`)."""


class ReplyBoard:
    """Replies waiting to be collected, by correlation id; one per actor system.

    While `watch` runs (the supervisor runs it), ask timeouts are kept by it
    (`deadlines.py`) instead of a cancel scope per ask.
    """

    __slots__ = ("_pending", "_ids", "late_replies", "_deadlines")

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self.late_replies = 0
        self._deadlines = Deadlines()

    @property
    def keeps_deadlines(self) -> bool:
        return self._deadlines.running

    def arm(self, corr: int, slot: _Pending, deadline: float) -> None:
        """Wake the ask `corr` at `deadline` (marked timed out) unless it is answered first."""
        slot.deadline = deadline
        if slot.timed_out:
            slot.timed_out = False
            slot.event = Signal()
        self._deadlines.arm(deadline, corr)

    async def watch(self) -> None:
        """Keep the deadlines of asks until cancelled; then the asks still timed fail as stopped."""
        try:
            await self._deadlines.run(self._expire, self._waiting)
        finally:
            for corr, slot in list(self._pending.items()):
                if slot.deadline != math.inf and not slot.event.is_set():
                    self.fail(corr, ActorStopped(f"{slot.target}: the actor system stopped while an ask waited"))

    def _expire(self, corr: int, now: float) -> None:
        slot = self._pending.get(corr)
        if slot is not None and slot.deadline <= now and not slot.event.is_set():
            slot.timed_out = True
            slot.event.set()

    def _waiting(self, corr: int) -> bool:
        slot = self._pending.get(corr)
        return slot is not None and not slot.event.is_set()

    def open(self, target: str) -> tuple[int, _Pending]:
        corr = next(self._ids)
        slot = _Pending(target)
        self._pending[corr] = slot
        return corr, slot

    def close(self, corr: int) -> None:
        self._pending.pop(corr, None)

    def begin(self, corr: int) -> bool:
        """Mark an ask as begun; False when its asker has abandoned it (do not start it)."""
        slot = self._pending.get(corr)
        if slot is None:
            return False
        slot.begun = True
        return True

    def abandon(self, corr: int) -> bool:
        """Withdraw an ask that was not begun; False (and nothing changes) once it was."""
        slot = self._pending.get(corr)
        if slot is None or slot.begun:
            return False
        del self._pending[corr]
        return True

    def forward(self, corr: int, on_reply: Callable[[bytes | None], None]) -> None:
        """Hand the reply of `corr`, whenever it comes, to `on_reply` (None if the actor fails it instead)."""
        slot = self._pending.get(corr)
        if slot is not None:
            slot.forward = on_reply

    def statistics(self) -> dict[str, int]:
        return {"waiting_asks": len(self._pending), "late_replies": self.late_replies}

    def deliver(self, corr: int, payload: bytes) -> None:
        self._end(corr, payload, None)

    def fail(self, corr: int, error: BaseException) -> None:
        self._end(corr, None, error)

    def _end(self, corr: int, payload: bytes | None, error: BaseException | None) -> None:
        """Wake the asker with the reply or the error; a forwarded ask's taker gets the reply (None for an error) in
        the replying actor's task, where what it raises is logged, not the actor's failure."""
        slot = self._pending.pop(corr, None)
        if slot is None:
            if error is None:
                self.late_replies += 1
            return
        if slot.forward is not None:
            try:
                slot.forward(payload)
            except Exception:  # noqa: BLE001 - a late reply's taker must not take the replying actor down
                log.exception("%s: the taker of a forwarded reply failed", slot.target)
            return
        slot.payload, slot.error = payload, error
        slot.event.set()

    def fail_target(self, target: str, error: BaseException) -> None:
        """Wake every ask waiting on `target`: its inbox contents died with it."""
        for corr, slot in list(self._pending.items()):
            if slot.target == target:
                self.fail(corr, error)


class ActorRef:
    """The address of an actor: what other actors and callers hold to talk to it."""

    __slots__ = ("name", "_send", "_board", "_codec")

    def __init__(
        self, name: str, send: MemoryObjectSendStream[Envelope], board: ReplyBoard, codec: Codec
    ) -> None:
        self.name = name
        self._send = send
        self._board = board
        self._codec = codec

    async def tell(self, msg: object) -> None:
        """Send; waits only while the inbox is full.

        No checkpoint when there is room: yielding here would run every other ready
        task (the receiving actor included) before the teller goes on, which put the
        cache store and the ledger settle on the caller's latency (docs/BENCHMARKS.md).
        """
        envelope = (0, self._codec.encode(msg))
        try:
            self._send.send_nowait(envelope)
        except anyio.WouldBlock:
            await self._send.send(envelope)

    def tell_nowait(self, msg: object) -> None:
        """Send without waiting; raises `anyio.WouldBlock` when the inbox is full."""
        self._send.send_nowait((0, self._codec.encode(msg)))

    async def ask(self, msg: object, timeout: float = math.inf) -> Any:
        """Send and wait for the reply; `timeout` bounds the send and the wait together."""
        call = self.call_nowait(msg)
        if call is None:
            if timeout == math.inf:
                call = await self.call(msg)
            else:
                deadline = current_time() + timeout
                try:
                    with anyio.fail_after(timeout):
                        call = await self.call(msg)
                except TimeoutError:
                    raise AskTimeout(f"{self.name} did not take {type(msg).__name__} within {timeout} s") from None
                timeout = max(0.0, deadline - current_time())
        try:
            return await call.result(timeout)
        finally:
            call.close()

    def call_nowait(self, msg: object) -> Call | None:
        """Send an ask if the inbox has room now (the common case, no await); None when it is full."""
        payload = self._codec.encode(msg)
        call = self._open(msg)
        try:
            self._send.send_nowait((call.corr, payload))
        except anyio.WouldBlock:
            call.close()
            return None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            call.close()
            raise ActorStopped(f"{self.name} has stopped") from None
        return call

    async def call(self, msg: object) -> Call:
        """Send an ask and return at once; collect the reply with `Call.result`."""
        call = self._open(msg)
        with self._unless_sent(call):
            await self._send.send((call.corr, self._codec.encode(msg)))
        return call

    def _open(self, msg: object) -> Call:
        corr, slot = self._board.open(self.name)
        return Call(self, type(msg).__name__, corr, slot)

    @contextlib.contextmanager
    def _unless_sent(self, call: Call) -> Iterator[None]:
        """Close the ask's slot if sending it fails; a closed inbox is ActorStopped."""
        try:
            yield
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            call.close()
            raise ActorStopped(f"{self.name} has stopped") from None
        except BaseException:
            call.close()
            raise

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"


class Call:
    """An ask in flight: wait for its reply, or abandon it while the actor has not begun it."""

    __slots__ = ("_ref", "_what", "corr", "_slot")

    def __init__(self, ref: ActorRef, what: str, corr: int, slot: _Pending) -> None:
        self._ref = ref
        self._what = what
        self.corr = corr
        self._slot = slot

    @property
    def begun(self) -> bool:
        return self._slot.begun

    async def result(self, timeout: float = math.inf) -> Any:
        """The reply; raises `AskTimeout` past `timeout` (the call stays open) or the actor's error."""
        slot = self._slot
        board = self._ref._board  # noqa: SLF001 - the ref's own board
        if timeout == math.inf:
            await slot.event.wait()
        elif board.keeps_deadlines:
            board.arm(self.corr, slot, current_time() + timeout)
            await slot.event.wait()
            if slot.timed_out and slot.payload is None and slot.error is None:
                raise AskTimeout(f"{self._ref.name} did not answer {self._what} within {timeout:g} s")
        else:
            try:
                with anyio.fail_after(timeout):
                    await slot.event.wait()
            except TimeoutError:
                raise AskTimeout(f"{self._ref.name} did not answer {self._what} within {timeout:g} s") from None
        if slot.error is not None:
            raise slot.error
        assert slot.payload is not None
        return self._ref._codec.decode_trusted(slot.payload)  # noqa: SLF001 - the ref's own codec

    def abandon(self) -> bool:
        """Withdraw the ask; True if the actor had not begun it and now never will."""
        return self._ref._board.abandon(self.corr)  # noqa: SLF001 - the ref's own board

    def close(self) -> None:
        """Stop waiting: a reply arriving later is counted as late and dropped."""
        self._ref._board.close(self.corr)  # noqa: SLF001 - the ref's own board

    def forward(self, on_reply: Callable[[Any], None]) -> None:
        """Stop waiting, but give the reply, decoded, to `on_reply` when it comes (None if the actor fails the ask
        instead, or stops). It runs in the replying actor's task, so it must not block; what it raises is logged."""
        codec = self._ref._codec  # noqa: SLF001 - the ref's own codec
        self._ref._board.forward(  # noqa: SLF001 - the ref's own board
            self.corr, lambda payload: on_reply(None if payload is None else codec.decode_trusted(payload)))


class Actor:
    """Base class: override `handle`; optionally `on_start` and `on_stop`.

    `handle` returns the reply (or None). An actor that answers later, from a task
    it spawned into `self.tasks`, returns None and calls `self.inbox.reply`.
    """

    name: str = "actor"
    raw: bool = False
    """A raw actor receives the encoded bytes undecoded (the telemetry log stores them as they are)."""
    inbox: Inbox
    tasks: TaskGroup

    async def on_start(self) -> None:
        """Acquire resources; runs again after every restart."""

    async def on_stop(self) -> None:
        """Release resources; runs on normal stop and after a crash."""

    async def handle(self, msg: Any, corr: int) -> object | None:
        raise NotImplementedError

    async def after_burst(self, drained: bool) -> None:
        """Runs once the queued messages are served (`drained`) or every BURST of them (more wait).

        An actor that answers in batches (the ledger: one fsync for every queued
        reserve) finishes its batch here when drained, in its own task: a task of its
        own woken to do it would first wait its turn behind everything else ready.
        """


class Inbox:
    """An actor's receiving side, kept across restarts so that its ActorRef stays valid."""

    __slots__ = ("name", "ref", "_receive", "_board", "_codec")

    def __init__(self, name: str, board: ReplyBoard, codec: Codec, capacity: int) -> None:
        send, receive = anyio.create_memory_object_stream[Envelope](capacity)
        self.name = name
        self.ref = ActorRef(name, send, board, codec)
        self._receive: MemoryObjectReceiveStream[Envelope] = receive
        self._board = board
        self._codec = codec

    def reply(self, corr: int, msg: object) -> None:
        if corr:
            self._board.deliver(corr, self._codec.encode(msg))

    def fail(self, corr: int, error: OrchestratorError) -> None:
        """Answer an ask with an error instead of a message (the asker raises it)."""
        if corr:
            self._board.fail(corr, error)

    def begin(self, corr: int) -> bool:
        """Whether to start the work of an ask: False once its asker abandoned it."""
        return self._board.begin(corr) if corr else True

    async def run(self, actor: Actor, ready: Callable[[], None] | None = None) -> None:
        """Serve `actor` until the inbox closes; `ready` is called once `on_start` succeeded.

        `on_stop` runs whenever `on_start` was entered, so a start that fails halfway
        still releases what it acquired (files, locks, sessions).
        """
        decode = _identity if actor.raw else self._codec.decode_trusted
        async with anyio.create_task_group() as tasks:
            actor.inbox = self
            actor.tasks = tasks
            try:
                await actor.on_start()
                if ready is not None:
                    ready()
                await self._serve(actor, decode)
            finally:
                with anyio.CancelScope(shield=True):
                    await actor.on_stop()
            tasks.cancel_scope.cancel()

    async def _serve(self, actor: Actor, decode: Callable[[bytes], Any]) -> None:
        """Serve queued messages back to back, yielding once per BURST of them.

        `receive()` is a checkpoint each time: with seven telemetry events and four
        actor messages per request, a yield per message was a loop iteration per
        message (docs/BENCHMARKS.md). Taking what is already queued without one, and
        yielding every BURST messages so a flooded actor cannot starve the others,
        keeps the order and the fairness at a fraction of the cost.
        """
        receive = self._receive
        after_burst = actor.after_burst if type(actor).after_burst is not Actor.after_burst else None
        served = 0
        while True:
            try:
                corr, payload = receive.receive_nowait()
            except anyio.WouldBlock:
                if after_burst is not None and served:
                    await after_burst(True)
                try:
                    corr, payload = await receive.receive()
                except anyio.EndOfStream:
                    return
                served = 0
            except anyio.EndOfStream:
                return
            else:
                if served >= BURST:
                    served = 0
                    if after_burst is not None:
                        await after_burst(False)
                    await anyio.lowlevel.checkpoint()
            served += 1
            await self._serve_one(actor, decode, corr, payload)

    async def _serve_one(self, actor: Actor, decode: Callable[[bytes], Any], corr: int, payload: bytes) -> None:
        try:
            reply = await actor.handle(decode(payload), corr)
        except BrokenInvariant:
            raise
        except OrchestratorError as exc:
            if not corr:
                log.warning("%s: a told message failed: %s: %s", self.name, exc.code, exc)
            self.fail(corr, exc)
            return
        except Exception as exc:  # noqa: BLE001 - one bad message must not take the actor down
            log.exception("%s: handling one message failed; the actor goes on", self.name)
            self.fail(corr, HandlerFailed(f"{self.name} could not handle a message: {type(exc).__name__}: {exc}"))
            return
        if reply is not None and corr:
            self.reply(corr, reply)

    def drain(self) -> int:
        """Drop every queued envelope (after a crash); returns how many were dropped."""
        dropped = 0
        while True:
            try:
                self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return dropped
            dropped += 1

    def close(self) -> None:
        """Stop accepting messages; the run loop ends once the queue is empty."""
        self.ref._send.close()  # noqa: SLF001 - the inbox owns its stream

    def dispose(self) -> None:
        """Release both ends of the stream for good (the actor system is gone)."""
        self.ref._send.close()  # noqa: SLF001 - the inbox owns its stream
        self._receive.close()


def _identity(payload: bytes) -> bytes:
    return payload


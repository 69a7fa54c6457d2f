"""Actors: a name, an inbox of encoded messages, and a run loop.

Messages cross as bytes made by the one codec, so no mutable object is ever shared
between actors. `tell` is fire-and-forget; `ask` sends with a correlation id and
waits for the reply on a `ReplyBoard`, raising `AskTimeout` past its deadline or
`ActorStopped` if the actor crashes first. An actor that must not block its inbox
(a provider calling HTTP) spawns the work into its own task group and answers later
with `Inbox.reply`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors.codec import Codec
from actors.errors import ActorStopped, AskTimeout, OrchestratorError

Envelope = tuple[int, bytes]
"""(correlation id, encoded message); a correlation id of 0 means no reply is wanted."""


class _Pending:
    __slots__ = ("event", "payload", "error", "target")

    def __init__(self, target: str) -> None:
        self.event = anyio.Event()
        self.payload: bytes | None = None
        self.error: BaseException | None = None
        self.target = target


class ReplyBoard:
    """Replies waiting to be collected, by correlation id; one per actor system."""

    __slots__ = ("_pending", "_ids", "late_replies")

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self.late_replies = 0

    def open(self, target: str) -> tuple[int, _Pending]:
        corr = next(self._ids)
        slot = _Pending(target)
        self._pending[corr] = slot
        return corr, slot

    def close(self, corr: int) -> None:
        self._pending.pop(corr, None)

    def deliver(self, corr: int, payload: bytes) -> None:
        slot = self._pending.pop(corr, None)
        if slot is None:
            self.late_replies += 1
            return
        slot.payload = payload
        slot.event.set()

    def fail(self, corr: int, error: BaseException) -> None:
        slot = self._pending.pop(corr, None)
        if slot is not None:
            slot.error = error
            slot.event.set()

    def fail_target(self, target: str, error: BaseException) -> None:
        """Wake every ask waiting on `target`: its inbox contents died with it."""
        for corr, slot in list(self._pending.items()):
            if slot.target == target:
                del self._pending[corr]
                slot.error = error
                slot.event.set()


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
        await self._send.send((0, self._codec.encode(msg)))

    def tell_nowait(self, msg: object) -> None:
        """Send without waiting; raises `anyio.WouldBlock` when the inbox is full."""
        self._send.send_nowait((0, self._codec.encode(msg)))

    async def ask(self, msg: object, timeout: float = math.inf) -> Any:
        corr, slot = self._board.open(self.name)
        try:
            with anyio.fail_after(timeout):
                await self._send.send((corr, self._codec.encode(msg)))
                await slot.event.wait()
        except TimeoutError:
            raise AskTimeout(
                f"{self.name} did not answer {type(msg).__name__} within {timeout} s"
            ) from None
        except anyio.BrokenResourceError:
            raise ActorStopped(f"{self.name} has stopped") from None
        finally:
            self._board.close(corr)
        if slot.error is not None:
            raise slot.error
        assert slot.payload is not None
        return self._codec.decode(slot.payload)

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"


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

    async def run(self, actor: Actor) -> None:
        """Serve `actor` until the inbox closes; exceptions propagate to the supervisor."""
        decode = _identity if actor.raw else self._codec.decode
        async with anyio.create_task_group() as tasks:
            actor.inbox = self
            actor.tasks = tasks
            await actor.on_start()
            try:
                async for corr, payload in self._receive:
                    reply = await actor.handle(decode(payload), corr)
                    if reply is not None and corr:
                        self.reply(corr, reply)
            finally:
                with anyio.CancelScope(shield=True):
                    await actor.on_stop()
            tasks.cancel_scope.cancel()

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


ActorFactory = Callable[[], Actor]

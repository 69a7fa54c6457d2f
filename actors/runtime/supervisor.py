"""One-for-one supervision: restart a crashed child with backoff, open its circuit past R in T.

Each child keeps one inbox for its whole life, so the ActorRef others hold survives
restarts. When a child crashes, whatever was queued in its inbox is dropped and
every ask waiting on it fails with `ActorStopped` naming the root cause at once: a
restarted provider must never make a call whose caller has already given up.

A child that cannot start the first time fails `run` with its own error (a locked
or corrupt journal is the user's to fix, not something a restart loop can mend);
later crashes are logged once with their traceback, kept as `last_error`, and shown
by `health()`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import anyio
import attrs
from anyio.abc import TaskStatus

from actors.codec import Codec
from actors.errors import ActorStopped, DeliberateCrash
from actors.runtime.actor import Actor, ActorRef, Inbox, ReplyBoard
from actors.runtime.breaker import BreakerSettings, CircuitBreaker, CircuitState, Transition
from actors.runtime.circuits import Circuits
from actors.runtime.clock import current_time

log = logging.getLogger(__name__)

TransitionHook = Callable[[Transition], None]


@attrs.define
class _Child:
    name: str
    factory: Callable[[], Actor]
    inbox: Inbox
    breaker: CircuitBreaker
    crashes: int = 0
    running: bool = False
    last_error: str = ""
    last_traceback: str = ""


def sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception a group holds (through nested groups), or None when it holds several."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else None


def root_cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group: what actually went wrong, not the task group around it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Supervisor:
    """Owns children's inboxes and breakers; `run` keeps them alive until `stop`."""

    def __init__(
        self,
        codec: Codec,
        *,
        clock: Callable[[], float] = current_time,
        on_transition: TransitionHook | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.board = ReplyBoard()
        self._codec = codec
        self._clock = clock
        self._on_transition = on_transition
        self._children: dict[str, _Child] = {}
        self._stopping = False
        self._stopped = anyio.Event()
        self._start_failure: BaseException | None = None
        self.stop_grace_s = stop_grace_s

    def __repr__(self) -> str:
        running = sum(child.running for child in self._children.values())
        return f"<Supervisor {running}/{len(self._children)} children running>"

    def add(
        self,
        name: str,
        factory: Callable[[], Actor],
        settings: BreakerSettings = BreakerSettings(),
        capacity: int = 4096,
    ) -> ActorRef:
        if name in self._children:
            raise ValueError(f"an actor named {name!r} is already supervised")
        inbox = Inbox(name, self.board, self._codec, capacity)
        breaker = CircuitBreaker(name, settings, self._on_transition)
        self._children[name] = _Child(name, factory, inbox, breaker)
        return inbox.ref

    def breaker(self, name: str) -> CircuitBreaker:
        return self._children[name].breaker

    def circuits(self, names: list[str] | tuple[str, ...]) -> Circuits:
        """The router's narrow view of these children's breakers (permits and outcomes)."""
        return Circuits({name: self._children[name].breaker for name in names}, self._clock)

    def available(self, name: str) -> bool:
        """Whether the child is running now and its circuit takes work."""
        child = self._children[name]
        return child.running and child.breaker.available(self._clock())

    def health(self) -> dict[str, dict[str, object]]:
        now = self._clock()
        return {
            name: {
                "running": child.running,
                "state": child.breaker.state.value,
                "available": child.running and child.breaker.available(now),
                "restarts": child.crashes,
                "generation": child.breaker.generation,
                "last_error": child.last_error,
                "open_for_s": max(0.0, child.breaker.open_until - now)
                if child.breaker.state is CircuitState.OPEN
                else 0.0,
            }
            for name, child in self._children.items()
        }

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every child, then keep them alive; a child that fails its first start fails `run`.

        After `stop`, children get `stop_grace_s` to finish what they hold; whatever
        is still running then is cancelled, so shutdown never waits on a hung handler.
        """
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._cancel_after_grace, outer.cancel_scope, name="supervisor:grace")
                outer.start_soon(self.board.watch, name="supervisor:ask-deadlines")
                async with anyio.create_task_group() as tg:
                    for child in self._children.values():
                        await tg.start(self._keep, child, name=f"supervise:{child.name}")
                    task_status.started()
                outer.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if self._start_failure is not None:
                raise self._start_failure from group
            raise
        finally:
            self._stopping = True
            self.dispose()

    def dispose(self) -> None:
        """Release every child's inbox for good: after a run, or instead of one when assembling the system failed."""
        for child in self._children.values():
            child.running = False
            child.inbox.dispose()

    def stop(self) -> None:
        """Close every inbox: each child finishes what it holds and its run loop ends."""
        self._stopping = True
        self._stopped.set()
        for child in self._children.values():
            child.inbox.close()

    async def _cancel_after_grace(self, scope: anyio.CancelScope) -> None:
        await self._stopped.wait()
        await anyio.sleep(self.stop_grace_s)
        scope.cancel()

    async def _keep(self, child: _Child, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        first = True

        def ready() -> None:
            nonlocal first
            child.running = True
            child.breaker.record_started(self._clock())
            if first:
                first = False
                task_status.started()

        while True:
            try:
                await child.inbox.run(child.factory(), ready)
                child.running = False
                return
            except Exception as exc:  # noqa: BLE001 - a supervisor's whole job
                child.running = False
                cause = root_cause(exc)
                if first:
                    self._start_failure = cause
                    raise
                if self._stopping:
                    return
                self._record_crash(child, cause)
                decision = child.breaker.record_crash(self._clock())
                await anyio.sleep(decision.delay_s)

    def _record_crash(self, child: _Child, cause: BaseException) -> None:
        """Keep the cause; log its traceback once per kind of crash, then one line per repeat (a deliberate crash,
        such as a provider's circuit breaking, always in one line: its cause is the whole story)."""
        repeat = child.last_error.startswith(f"{type(cause).__name__}:")
        child.crashes += 1
        child.last_error = f"{type(cause).__name__}: {cause}"
        child.last_traceback = "".join(traceback.format_exception(cause))
        if repeat or isinstance(cause, DeliberateCrash):
            log.warning("%s crashed%s (%s); restarting", child.name, " again" if repeat else "", child.last_error)
        else:
            log.error("%s crashed (%s); restarting\n%s", child.name, child.last_error, child.last_traceback)
        dropped = child.inbox.drain()
        self.board.fail_target(
            child.name,
            ActorStopped(f"{child.name} crashed ({child.last_error}); {dropped} queued messages dropped"),
        )

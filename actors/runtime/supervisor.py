"""One-for-one supervision: restart a crashed child with backoff, open its circuit past R in T.

Each child keeps one inbox for its whole life, so the ActorRef others hold survives
restarts. When a child crashes, whatever was queued in its inbox is dropped and
every ask waiting on it fails with `ActorStopped` at once: a restarted provider
must never make a call whose caller has already given up (and released the money).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import attrs
from anyio.abc import TaskStatus

from actors.codec import Codec
from actors.errors import ActorStopped
from actors.runtime.actor import Actor, ActorRef, Inbox, ReplyBoard
from actors.runtime.breaker import BreakerSettings, CircuitBreaker, CircuitState, Transition

TransitionHook = Callable[[Transition], None]


@attrs.define
class _Child:
    name: str
    factory: Callable[[], Actor]
    inbox: Inbox
    breaker: CircuitBreaker
    crashes: int = 0
    last_error: str = ""


class Supervisor:
    """Owns children's inboxes and breakers; `run` keeps them alive until `stop`."""

    def __init__(
        self,
        codec: Codec,
        *,
        clock: Callable[[], float] = anyio.current_time,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.board = ReplyBoard()
        self._codec = codec
        self._clock = clock
        self._on_transition = on_transition
        self._children: dict[str, _Child] = {}
        self._stopping = False

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
        self._children[name] = _Child(name, factory, inbox, CircuitBreaker(name, settings))
        return inbox.ref

    def breaker(self, name: str) -> CircuitBreaker:
        return self._children[name].breaker

    def health(self) -> dict[str, dict[str, object]]:
        now = self._clock()
        return {
            name: {
                "state": child.breaker.state.value,
                "available": child.breaker.available(now),
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
        try:
            async with anyio.create_task_group() as tg:
                for child in self._children.values():
                    tg.start_soon(self._keep, child, name=f"supervise:{child.name}")
                task_status.started()
        finally:
            self._stopping = True
            for child in self._children.values():
                child.inbox.dispose()

    def stop(self) -> None:
        """Close every inbox: each child finishes what it holds and its run loop ends."""
        self._stopping = True
        for child in self._children.values():
            child.inbox.close()

    def publish(self, breaker: CircuitBreaker, before: int) -> None:
        """Report the transitions a breaker recorded since `before` transitions."""
        if self._on_transition is None:
            return
        for transition in list(breaker.transitions)[before:]:
            self._on_transition(transition)

    async def _keep(self, child: _Child) -> None:
        while True:
            count = len(child.breaker.transitions)
            child.breaker.record_started(self._clock())
            self.publish(child.breaker, count)
            try:
                await child.inbox.run(child.factory())
                return
            except Exception as exc:  # noqa: BLE001 - a supervisor's whole job
                if self._stopping:
                    return
                child.crashes += 1
                child.last_error = f"{type(exc).__name__}: {exc}"
                child.inbox.drain()
                self.board.fail_target(
                    child.name, ActorStopped(f"{child.name} crashed ({child.last_error})")
                )
                count = len(child.breaker.transitions)
                decision = child.breaker.record_crash(self._clock())
                self.publish(child.breaker, count)
                await anyio.sleep(decision.delay_s)

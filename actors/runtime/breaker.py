"""The circuit breaker that a supervisor is: a synchronous state machine with an injected clock.

A provider actor crashes itself after repeated failures; its supervisor restarts it
with exponential backoff. Past `max_restarts` within `window_s` the circuit opens:
the router sends the provider no work until `cooldown_s` has passed. Then it is
half-open: at most `probe_permits` requests may try it, each with a deadline, so a
hung probe frees its permit (as a failure) instead of holding the circuit half-open.
A success closes the circuit; a failure opens it again with a longer cooldown.

Every permit carries the generation (restart count) it was issued under: an outcome
that arrives from before a restart is stale and moves nothing. The object has no I/O
and never awaits, so the event loop makes each method atomic; tests drive it with a
plain number as the clock.

Every transition is handed to `on_transition` as it happens (telemetry, health), so
none is lost however many there are; `recent` keeps the last few for display.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable

import attrs


class CircuitState(str, enum.Enum):
    CLOSED = "closed"
    RESTARTING = "restarting"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DISABLED = "disabled"


@attrs.frozen
class BreakerSettings:
    """Restart intensity and circuit timing; defaults follow the source (1 s, x2, cap 60 s)."""

    max_restarts: int = 3
    window_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap_s: float = 60.0
    cooldown_s: float = 30.0
    cooldown_cap_s: float = 600.0
    probe_permits: int = 1
    probe_timeout_s: float = 30.0
    failures_to_crash: int = 5


@attrs.frozen
class Permit:
    """Leave to send one request; a probe permit (probe_id > 0) has a deadline."""

    generation: int
    probe_id: int
    deadline: float

    @property
    def probe(self) -> bool:
        return self.probe_id > 0


@attrs.frozen
class Transition:
    """A state change, for telemetry and `orch.health()`."""

    provider: str
    old: CircuitState
    new: CircuitState
    at: float
    reason: str


@attrs.frozen
class CrashDecision:
    """What the supervisor does after a crash: wait `delay_s`, then restart."""

    delay_s: float
    opened: bool


RECENT_TRANSITIONS = 32


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        settings: BreakerSettings,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.state = CircuitState.CLOSED
        self.generation = 0
        self.open_until = 0.0
        self.restart_at = 0.0
        self._restarts: deque[float] = deque()
        self._consecutive_crashes = 0
        self._cooldown = settings.cooldown_s
        self._probes: dict[int, float] = {}
        self._probe_ids = 0
        self.recent: deque[Transition] = deque(maxlen=RECENT_TRANSITIONS)
        self.transitions_total = 0
        self.on_transition = on_transition

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.provider} {self.state.value} generation={self.generation} "
            f"probes={len(self._probes)} transitions={self.transitions_total}>"
        )

    def _move(self, new: CircuitState, now: float, reason: str) -> None:
        if new is not self.state:
            transition = Transition(self.provider, self.state, new, now, reason)
            self.state = new
            self.recent.append(transition)
            self.transitions_total += 1
            if self.on_transition is not None:
                self.on_transition(transition)

    # -- the router's side -------------------------------------------------------

    def available(self, now: float) -> bool:
        """Whether the router may plan to use this provider now (without taking a permit)."""
        self._expire_probes(now)
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            return now >= self.open_until
        if self.state is CircuitState.HALF_OPEN:
            return len(self._probes) < self.settings.probe_permits
        return False

    def ready_at(self, now: float) -> float:
        """When the router may next plan to use this provider: now, or when its cooldown or restart ends."""
        if self.available(now):
            return now
        if self.state is CircuitState.OPEN:
            return self.open_until
        if self.state is CircuitState.RESTARTING:
            return max(now, self.restart_at)
        if self.state is CircuitState.HALF_OPEN:
            return min(self._probes.values(), default=now)
        return math.inf

    def acquire(self, now: float) -> Permit | None:
        """A permit to send one request, or None while the circuit refuses work."""
        self._expire_probes(now)
        if self.state is CircuitState.CLOSED:
            return Permit(self.generation, 0, float("inf"))
        if self.state is CircuitState.OPEN and now >= self.open_until:
            self._move(CircuitState.HALF_OPEN, now, "cooldown elapsed")
        if self.state is CircuitState.HALF_OPEN:
            if len(self._probes) >= self.settings.probe_permits:
                return None
            self._probe_ids += 1
            deadline = now + self.settings.probe_timeout_s
            self._probes[self._probe_ids] = deadline
            return Permit(self.generation, self._probe_ids, deadline)
        return None

    def admits(self, permit: Permit) -> bool:
        """Whether `permit` still stands: same generation, and the circuit still takes work."""
        return not self._stale(permit) and self.state in (CircuitState.CLOSED, CircuitState.HALF_OPEN)

    def record_success(self, permit: Permit, now: float) -> None:
        if self._stale(permit):
            return
        if permit.probe:
            self._release_probe(permit)
            if self.state is CircuitState.HALF_OPEN:
                self._cooldown = self.settings.cooldown_s
                self._restarts.clear()
                self._consecutive_crashes = 0
                self._move(CircuitState.CLOSED, now, "probe succeeded")
        elif self.state is CircuitState.CLOSED:
            self._consecutive_crashes = 0

    def record_failure(self, permit: Permit, now: float, reason: str) -> None:
        if self._stale(permit):
            return
        if permit.probe:
            self._release_probe(permit)
            if self.state is CircuitState.HALF_OPEN:
                self._open(now, f"probe failed: {reason}")

    def release(self, permit: Permit) -> None:
        """Return a permit unused (the request went elsewhere): decides nothing."""
        if permit.probe and not self._stale(permit):
            self._release_probe(permit)

    def disable(self, now: float, reason: str) -> None:
        """Take the provider out until its configuration changes (AUTH failures)."""
        self._move(CircuitState.DISABLED, now, reason)

    # -- the supervisor's side ---------------------------------------------------

    def record_crash(self, now: float) -> CrashDecision:
        """Count a crash; decide the restart delay and whether the circuit opens."""
        self.generation += 1
        self._probes.clear()
        if self.state is CircuitState.DISABLED:
            return CrashDecision(self.settings.cooldown_cap_s, False)
        window_start = now - self.settings.window_s
        while self._restarts and self._restarts[0] < window_start:
            self._restarts.popleft()
        self._restarts.append(now)
        self._consecutive_crashes += 1
        if len(self._restarts) > self.settings.max_restarts or self.state is CircuitState.HALF_OPEN:
            self._open(now, f"{len(self._restarts)} restarts within {self.settings.window_s:g} s")
            return CrashDecision(self.open_until - now, True)
        delay = min(
            self.settings.backoff_cap_s,
            self.settings.backoff_initial_s
            * self.settings.backoff_factor ** (self._consecutive_crashes - 1),
        )
        self.restart_at = now + delay
        self._move(CircuitState.RESTARTING, now, "crashed; restarting")
        return CrashDecision(delay, False)

    def record_started(self, now: float) -> None:
        """The supervisor (re)started the actor: a restart closes, an open circuit half-opens."""
        if self.state is CircuitState.RESTARTING:
            self._move(CircuitState.CLOSED, now, "restarted")

    # -- internals ----------------------------------------------------------------

    def _open(self, now: float, reason: str) -> None:
        self.open_until = now + self._cooldown
        self._cooldown = min(self._cooldown * 2, self.settings.cooldown_cap_s)
        self._probes.clear()
        self._move(CircuitState.OPEN, now, reason)

    def _stale(self, permit: Permit) -> bool:
        return permit.generation != self.generation or self.state is CircuitState.DISABLED

    def _release_probe(self, permit: Permit) -> None:
        self._probes.pop(permit.probe_id, None)

    def _expire_probes(self, now: float) -> None:
        if not self._probes:
            return
        expired = [pid for pid, deadline in self._probes.items() if deadline <= now]
        for pid in expired:
            del self._probes[pid]
        if expired and self.state is CircuitState.HALF_OPEN:
            self._open(now, "probe timed out")

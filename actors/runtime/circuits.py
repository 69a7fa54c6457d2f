"""The router's view of the providers' circuit breakers.

The supervisor owns each breaker (it records crashes and restarts); the router only
asks for permits and reports how each permitted call ended, through this object.
Nothing else changes a breaker, so its state has one owner and one set of
entry points, and every transition reaches the supervisor's hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from actors.runtime.breaker import CircuitBreaker, CircuitState, Permit


class Circuits:
    __slots__ = ("_breakers", "_clock", "_everyone")

    def __init__(self, breakers: Mapping[str, CircuitBreaker], clock: Callable[[], float]) -> None:
        self._breakers = dict(breakers)
        self._clock = clock
        self._everyone = frozenset(self._breakers)

    def available(self) -> frozenset[str]:
        """Providers the router may plan to use now.

        Every decision asks; when every circuit is closed (the usual case) the answer is
        all of them whatever the time, so it is one pass over the states, not a set built.
        """
        if all(breaker.state is CircuitState.CLOSED for breaker in self._breakers.values()):
            return self._everyone
        now = self._clock()
        return frozenset(name for name, breaker in self._breakers.items() if breaker.available(now))

    def ready_at(self, name: str) -> float:
        """When `name` may next take work (now, a cooldown's or a restart's end, or never)."""
        return self._breakers[name].ready_at(self._clock())

    def retry_after(self, names: Iterable[str]) -> float | None:
        """Seconds until the first of `names` may take work again; None if one may now or none ever will."""
        now = self._clock()
        ready = min((self._breakers[name].ready_at(now) for name in names if name in self._breakers), default=math.inf)
        return None if ready <= now or ready == math.inf else ready - now

    def state(self, name: str) -> CircuitState:
        return self._breakers[name].state

    def acquire(self, name: str) -> Permit | None:
        return self._breakers[name].acquire(self._clock())

    def admits(self, name: str, permit: Permit) -> bool:
        """Whether a permit taken earlier still stands: the provider has not crashed or opened since.

        An attempt awaits its reservation between taking the permit and sending the
        call; a call sent to a provider that crashed meanwhile would wait in its inbox
        for the restart (seconds of backoff) only to be tried on a provider known bad.
        """
        return self._breakers[name].admits(permit)

    def succeeded(self, name: str, permit: Permit) -> None:
        self._breakers[name].record_success(permit, self._clock())

    def failed(self, name: str, permit: Permit, reason: str) -> None:
        self._breakers[name].record_failure(permit, self._clock(), reason)

    def unused(self, name: str, permit: Permit) -> None:
        self._breakers[name].release(permit)

    def disable(self, name: str, reason: str) -> None:
        self._breakers[name].disable(self._clock(), reason)

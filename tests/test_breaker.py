"""The circuit breaker core, driven with a plain number as the clock."""

from __future__ import annotations

import pytest

from actors.runtime.breaker import BreakerSettings, CircuitBreaker, CircuitState

SETTINGS = BreakerSettings(
    max_restarts=2, window_s=60, backoff_initial_s=1, backoff_factor=2, backoff_cap_s=5,
    cooldown_s=30, cooldown_cap_s=100, probe_permits=1, probe_timeout_s=10,
)


def opened() -> CircuitBreaker:
    breaker = CircuitBreaker("p", SETTINGS)
    for t in (0.0, 1.0, 2.0):
        breaker.record_crash(t)
    assert breaker.state is CircuitState.OPEN
    return breaker


def test_restarts_back_off_exponentially_up_to_the_cap() -> None:
    breaker = CircuitBreaker("p", BreakerSettings(max_restarts=10, backoff_cap_s=5))
    delays = [breaker.record_crash(float(t)).delay_s for t in range(5)]
    assert delays == [1, 2, 4, 5, 5]
    assert breaker.state is CircuitState.RESTARTING
    breaker.record_started(5.0)
    assert breaker.state is CircuitState.CLOSED


def test_crashes_spread_beyond_the_window_do_not_open() -> None:
    breaker = CircuitBreaker("p", SETTINGS)
    for t in (0.0, 100.0, 200.0, 300.0):
        assert not breaker.record_crash(t).opened
        breaker.record_started(t + 1)


def test_past_intensity_the_circuit_opens_for_the_cooldown() -> None:
    breaker = opened()
    assert breaker.open_until == 32.0
    assert not breaker.available(31.9)
    assert breaker.acquire(31.9) is None
    assert breaker.available(32.0)


def test_half_open_admits_limited_probes_and_success_closes() -> None:
    breaker = opened()
    probe = breaker.acquire(40.0)
    assert probe is not None and probe.probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire(40.5) is None, "only one probe permit"
    breaker.record_success(probe, 41.0)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.acquire(41.0) is not None


def test_failed_probe_reopens_with_a_longer_cooldown() -> None:
    breaker = opened()
    probe = breaker.acquire(40.0)
    assert probe is not None
    breaker.record_failure(probe, 41.0, "server_error")
    assert breaker.state is CircuitState.OPEN
    assert breaker.open_until == 41.0 + 60.0


def test_a_hung_probe_frees_its_permit_at_its_deadline_and_reopens() -> None:
    breaker = opened()
    assert breaker.acquire(40.0) is not None
    assert not breaker.available(45.0)
    assert not breaker.available(50.0)
    assert breaker.state is CircuitState.OPEN
    assert breaker.available(50.0 + 60.0)


def test_an_outcome_from_before_a_restart_is_stale() -> None:
    breaker = opened()
    old_probe = breaker.acquire(40.0)
    assert old_probe is not None and old_probe.probe
    breaker.record_crash(41.0)
    assert breaker.state is CircuitState.OPEN
    new_probe = breaker.acquire(breaker.open_until)
    assert new_probe is not None and new_probe.probe_id != old_probe.probe_id
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.record_success(old_probe, breaker.open_until + 1)
    assert breaker.state is CircuitState.HALF_OPEN, "a probe from before the restart decides nothing"
    breaker.record_failure(old_probe, breaker.open_until + 1, "server_error")
    assert breaker.state is CircuitState.HALF_OPEN


def test_disabled_provider_stays_out() -> None:
    breaker = CircuitBreaker("p", SETTINGS)
    breaker.disable(0.0, "authentication failed")
    assert breaker.acquire(1e9) is None
    assert [t.new for t in breaker.recent] == [CircuitState.DISABLED]


@pytest.mark.parametrize("permits", [1, 3])
def test_unused_probe_permit_can_be_returned(permits: int) -> None:
    breaker = CircuitBreaker("p", BreakerSettings(max_restarts=0, cooldown_s=1, probe_permits=permits))
    breaker.record_crash(0.0)
    taken = [breaker.acquire(2.0) for _ in range(permits)]
    assert all(taken) and breaker.acquire(2.0) is None
    breaker.release(taken[0])  # type: ignore[arg-type]
    assert breaker.acquire(2.0) is not None
    assert breaker.state is CircuitState.HALF_OPEN

"""The circuit breaker's state machine, on a fake clock (cool-downs pass without sleeping)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rediscache.kit import CircuitBreaker

from .conftest import FakeClock


def breaker(clock: FakeClock, threshold: int = 3, cool_down: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, timedelta(seconds=cool_down), clock=clock)


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert b.allow()
        b.record_failure()


def test_a_new_breaker_is_closed_and_lets_calls_through(clock: FakeClock) -> None:
    b = breaker(clock)

    assert b.state == "closed" and b.allow()


def test_it_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    b = breaker(clock, threshold=3)

    fail(b, 2)
    assert b.state == "closed"
    fail(b, 1)

    assert b.state == "open" and not b.allow()
    assert b.times_opened == 1


def test_a_success_resets_the_count_of_consecutive_failures(clock: FakeClock) -> None:
    b = breaker(clock, threshold=3)

    fail(b, 2)
    b.record_success()
    fail(b, 2)

    assert b.state == "closed"


def test_it_stays_open_until_the_cool_down_has_passed(clock: FakeClock) -> None:
    b = breaker(clock, cool_down=5)
    fail(b, 3)

    clock.advance(4.9)
    assert not b.allow()
    clock.advance(0.1)

    assert b.state == "half_open"
    assert b.allow()


def test_only_one_probe_goes_through_at_a_time(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(5)

    assert b.allow()
    assert not b.allow()


def test_a_successful_probe_closes_the_circuit(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(5)
    b.allow()

    b.record_success()

    assert b.state == "closed" and b.consecutive_failures == 0 and b.allow()


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(clock: FakeClock) -> None:
    b = breaker(clock, cool_down=5)
    fail(b, 3)
    clock.advance(5)
    b.allow()

    b.record_failure()

    assert b.state == "open" and not b.allow()
    clock.advance(5)
    assert b.allow()
    assert b.times_opened == 1  # a re-opening is the same outage


def test_a_probe_without_a_verdict_lets_another_call_probe(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(5)
    b.allow()

    b.release()

    assert b.allow()


@pytest.mark.parametrize("threshold", [0, -1, 1.5, True])
def test_a_threshold_below_one_is_refused(threshold: object) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold)  # type: ignore[arg-type]


def test_a_cool_down_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(3, timedelta(0))

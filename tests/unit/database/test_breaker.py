"""database.breaker: the legacy client's circuit breaker."""

from __future__ import annotations

import pytest

from aurum_otel.database import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    DatabaseError,
    DatabaseUnavailableError,
)
from tests.unit.database.fakes import (
    Clock,
    FakeDB,
    dropped_mid_query,
    legacy_client,
    syntax_error,
)


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    clock = Clock()
    db = FakeDB()
    client = legacy_client(
        db, clock=clock, breaker=BreakerPolicy(failure_threshold=3, reset_timeout=30.0),
    )
    db.fail(*(dropped_mid_query() for _ in range(3)))
    with pytest.raises(DatabaseUnavailableError):
        client.query("SELECT 1")  # three attempts, three failures: the breaker opens
    assert client.breaker.state is BreakerState.OPEN

    sleeps: list[float] = []
    client._sleep = sleeps.append
    with pytest.raises(CircuitOpenError) as caught:
        client.query("SELECT 1")
    assert len(db.statements) == 3 and sleeps == []  # failed fast: no call, no retry
    assert caught.value.retry_after == pytest.approx(30.0)

    clock.advance(30.0)
    assert client.breaker.state is BreakerState.HALF_OPEN
    assert client.query("SELECT 1") == [(1, "a"), (2, "b")]
    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.opened == 1 and client.breaker.closed == 1


def test_a_failed_trial_reopens_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, reset_timeout=5.0), clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(5.0)
    breaker.acquire()  # the one trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire()  # a second concurrent trial is refused
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(4.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_user_errors_do_not_open_the_breaker() -> None:
    db = FakeDB()
    client = legacy_client(db, breaker=BreakerPolicy(failure_threshold=2))
    db.fail(syntax_error(), syntax_error(), syntax_error())
    for _ in range(3):
        with pytest.raises(DatabaseError):
            client.query("SELECT FORM t")
    assert client.breaker.state is BreakerState.CLOSED

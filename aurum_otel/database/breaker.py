"""A circuit breaker: stop calling a database that keeps failing, and probe it now and then."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aurum_otel.database.errors import CircuitOpenError
from aurum_otel.errors import ConfigurationError

logger = logging.getLogger("aurum_otel.database")


class BreakerState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls fail fast with CircuitOpenError until the reset timeout has passed."""
    HALF_OPEN = "half_open"
    """A few trial calls go through: a success closes the breaker, a failure opens it again."""


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When the breaker opens and when it tries again.

    Attributes:
        failure_threshold: consecutive failed attempts that open the breaker.
        reset_timeout: seconds the breaker stays open before letting trial calls through.
        half_open_calls: trial calls allowed at once while half-open.
    """

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    half_open_calls: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_calls < 1 or self.reset_timeout <= 0:
            raise ConfigurationError(
                "breaker", (self.failure_threshold, self.reset_timeout, self.half_open_calls),
                "failure_threshold >= 1, reset_timeout > 0, half_open_calls >= 1",
            )

    def copy(self, **changes: Any) -> BreakerPolicy:
        """A new policy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


class CircuitBreaker:
    """A thread-safe circuit breaker with an injectable clock.

    Call :meth:`acquire` before each attempt, then exactly one of :meth:`record_success`,
    :meth:`record_failure` or :meth:`cancel`. A failure is a failure *of the server* (unreachable, overloaded,
    timed out); a statement the server rejected (a syntax error) proves it is up: record it as
    a success.
    """

    def __init__(
        self, policy: BreakerPolicy = BreakerPolicy(), *, target: str = "database",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.target = target
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0
        self.opened = 0  # times it opened, for tests and status pages
        self.closed = 0  # times it closed again after opening

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far."""
        return self._failures

    def acquire(self) -> None:
        """Let one attempt through, or raise CircuitOpenError."""
        with self._lock:
            state = self._current()
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and self._trials < self.policy.half_open_calls:
                self._trials += 1
                return
            retry_after = self._opened_at + self.policy.reset_timeout - self._clock()
            failures = self._failures
        raise CircuitOpenError(self.target, failures, retry_after)

    def record_success(self) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                self.closed += 1
                logger.info("circuit for %s closed: a trial call succeeded", self.target)
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trials = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            state = self._current()
            if state is BreakerState.HALF_OPEN or (
                state is BreakerState.CLOSED and self._failures >= self.policy.failure_threshold
            ):
                self._open()

    def cancel(self) -> None:
        """The attempt ended without a verdict on the server: free its trial slot, if it held one."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN and self._trials > 0:
                self._trials -= 1

    def _current(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.policy.reset_timeout
        ):
            self._state = BreakerState.HALF_OPEN
            self._trials = 0
        return self._state

    def _open(self) -> None:
        if self._state is not BreakerState.OPEN:
            self.opened += 1
            logger.warning(
                "circuit for %s opened after %d consecutive failures; failing fast for %gs",
                self.target, self._failures, self.policy.reset_timeout,
            )
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._trials = 0

"""A bounded pool of DB-API connections with idle expiry and a health check on checkout."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aurum_otel.database.connect import DBAPIConnection
from aurum_otel.database.errors import DatabaseUnavailableError, ErrorKind, PoolTimeoutError
from aurum_otel.errors import ConfigurationError

logger = logging.getLogger("aurum_otel.database")


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """How many connections, and how long they live.

    Attributes:
        min_size: idle connections kept open even past ``idle_timeout`` (opened on demand).
        max_size: connections open at once; a checkout beyond waits.
        idle_timeout: seconds after which an idle connection beyond ``min_size`` is closed.
        checkout_timeout: seconds a checkout waits for a free connection.
        health_check_after: a connection idle this long is checked before it is handed out
            (0: every checkout; a check is a round trip, so not free).
    """

    min_size: int = 1
    max_size: int = 8
    idle_timeout: float = 300.0
    checkout_timeout: float = 10.0
    health_check_after: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise ConfigurationError(
                "pool size", (self.min_size, self.max_size), "0 <= min_size <= max_size, max_size >= 1"
            )

    def copy(self, **changes: Any) -> PoolPolicy:
        """A new policy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(slots=True)
class Pooled:
    """A connection checked out of the pool, with its ages."""

    connection: DBAPIConnection
    created_at: float
    last_used: float


class ConnectionPool:
    """Hands out connections, at most ``max_size`` at once, reusing the most recently used.

    Args:
        open_connection: opens a new connection.
        policy: sizes and timeouts.
        health_check: raises if a connection is no longer usable.
        clock: for connection ages (injected in tests).
    """

    def __init__(
        self,
        open_connection: Callable[[], DBAPIConnection],
        policy: PoolPolicy = PoolPolicy(),
        *,
        health_check: Callable[[DBAPIConnection], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._open = open_connection
        self._health_check = health_check
        self._clock = clock
        self._cond = threading.Condition()
        self._idle: list[Pooled] = []  # most recently used last
        self._size = 0
        self._closed = False
        self.opened = 0
        self.discarded = 0

    @property
    def size(self) -> int:
        """Connections open (idle and in use)."""
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    def checkout(self) -> Pooled:
        """A connection for the caller's exclusive use; give it back with :meth:`release`.

        Raises:
            PoolTimeoutError: every connection stayed in use for ``checkout_timeout``.
            DatabaseUnavailableError: the pool is closed.
        """
        started = time.monotonic()
        deadline = started + self.policy.checkout_timeout
        expired: list[Pooled] = []
        pooled: Pooled | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise DatabaseUnavailableError(
                        "the connection pool is closed; create a new client",
                        kind=ErrorKind.FATAL,
                    )
                expired.extend(self._expire())
                if self._idle:
                    pooled = self._idle.pop()
                    break
                if self._size < self.policy.max_size:
                    self._size += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeoutError(
                        "connection", self.policy.max_size, time.monotonic() - started
                    )
                self._cond.wait(remaining)
        for stale in expired:
            _close_quietly(stale.connection)
        if pooled is not None and self._needs_check(pooled) and not self._healthy(pooled):
            self.discarded += 1
            _close_quietly(pooled.connection)
            pooled = None
        if pooled is None:
            pooled = self._new()
        return pooled

    def release(self, pooled: Pooled, *, discard: bool = False) -> None:
        """Give a connection back; ``discard`` closes it (it failed, or its state is unknown)."""
        with self._cond:
            if discard or self._closed:
                self._size -= 1
            else:
                pooled.last_used = self._clock()
                self._idle.append(pooled)
            self._cond.notify()
        if discard or self._closed:
            if discard:
                self.discarded += 1
            _close_quietly(pooled.connection)

    def close(self) -> None:
        """Close idle connections now and the ones in use when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for pooled in idle:
            _close_quietly(pooled.connection)

    def _new(self) -> Pooled:
        try:
            connection = self._open()
        except BaseException:
            with self._cond:
                self._size -= 1
                self._cond.notify()
            raise
        self.opened += 1
        now = self._clock()
        return Pooled(connection, now, now)

    def _expire(self) -> list[Pooled]:
        now = self._clock()
        expired: list[Pooled] = []
        # The oldest idle connections are first; stop at the first one still fresh.
        while (
            self._idle
            and self._size > self.policy.min_size
            and now - self._idle[0].last_used >= self.policy.idle_timeout
        ):
            expired.append(self._idle.pop(0))
            self._size -= 1
        return expired

    def _needs_check(self, pooled: Pooled) -> bool:
        return (
            self._health_check is not None
            and self._clock() - pooled.last_used >= self.policy.health_check_after
        )

    def _healthy(self, pooled: Pooled) -> bool:
        assert self._health_check is not None
        try:
            self._health_check(pooled.connection)
        except Exception as exc:
            logger.info(
                "discarding a pooled connection that failed its health check (%s)",
                type(exc).__name__,
            )
            return False
        return True


def _close_quietly(connection: DBAPIConnection) -> None:
    with contextlib.suppress(Exception):
        connection.close()

"""``LegacyTrinoClient``: the platform's original Trino client, every safeguard included.

Per call: a concurrency slot (bounded queue wait), the read cache, then attempts until success or
the retry policy says stop. Each attempt asks the circuit breaker, checks a pooled connection out
(health-checked if it idled), and runs the statement under a time limit in its own client span.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from aurum_otel.database.base import Params, Rows
from aurum_otel.database.breaker import BreakerPolicy, CircuitBreaker
from aurum_otel.database.cache import QueryCache
from aurum_otel.database.config import ConnectionConfig
from aurum_otel.database.connect import Connect, DBAPIConnection, DBAPICursor, connect_for
from aurum_otel.database.errors import (
    CircuitOpenError,
    DatabaseError,
    ErrorKind,
    PoolTimeoutError,
    QueryTimeoutError,
    classify,
    scrubbed_cause,
    translate,
)
from aurum_otel.database.limiter import ConcurrencyLimiter
from aurum_otel.database.pool import ConnectionPool, PoolPolicy
from aurum_otel.database.retry import RetryPolicy
from aurum_otel.database.spans import DB_RESPONSE_RETURNED_ROWS, DatabaseSpans
from aurum_otel.database.sql import operation_name
from aurum_otel.database.statement import execute_statement, fetch_rows
from aurum_otel.errors import AurumOtelError, error_type

logger = logging.getLogger("aurum_otel.database")
T = TypeVar("T")
EVENT_RETRY = "aurum.db.retry"
EVENT_CACHE_HIT = "aurum.db.cache_hit"


@dataclass(frozen=True, slots=True)
class LegacyOptions:
    """The legacy client's safeguards; immutable (``copy(...)`` makes a changed one).

    Attributes:
        pool: connection pool sizes and timeouts.
        retry: which failures are retried and the backoff between attempts.
        breaker: when the circuit opens and when it is probed again.
        query_timeout: seconds a statement may run before it is cancelled (``None``: no limit).
        max_concurrency: statements in flight at once.
        queue_timeout: seconds a statement waits for a slot before PoolTimeoutError.
        cache_ttl: seconds a read's rows are cached (0: no cache); any write clears the cache.
        cache_entries: the most reads cached.
    """

    pool: PoolPolicy = PoolPolicy()
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    query_timeout: float | None = 300.0
    max_concurrency: int = 16
    queue_timeout: float = 30.0
    cache_ttl: float = 0.0
    cache_entries: int = 256

    def copy(self, **changes: Any) -> LegacyOptions:
        """A new set of options with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


class LegacyTrinoClient:
    """A pooled, retrying, circuit-breaking Trino client (the ``legacy`` side of ``database``).

    Args:
        config: where to connect.
        connect: opens a DB-API connection (default: Trino, or sqlite for a sqlite config).
        options: the safeguards (pool, retries, breaker, timeouts, cache).
        clock: monotonic seconds, for the breaker, the pool and the cache (injected in tests).
        sleep: waits between attempts (injected in tests).
        rand: uniform [0, 1) for the backoff's jitter.
        tracer_provider: for the statement spans; default: aurum-otel's, else the global one.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        connect: Connect | None = None,
        options: LegacyOptions = LegacyOptions(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self._connect = connect or connect_for(config)
        self._sleep = sleep
        self._rand = rand
        self.breaker = CircuitBreaker(options.breaker, target=config.target, clock=clock)
        self.pool = ConnectionPool(
            lambda: self._connect(config), options.pool,
            health_check=_health_check, clock=clock,
        )
        self.limiter = ConcurrencyLimiter(options.max_concurrency, options.queue_timeout)
        self.cache = (
            QueryCache(options.cache_ttl, max_entries=options.cache_entries, clock=clock)
            if options.cache_ttl > 0 else None
        )
        self.spans = DatabaseSpans(config, tracer_provider=tracer_provider)
        self.attempts = 0
        self.retries = 0

    def query(self, sql: str, params: Params = None) -> Rows:
        """Run a read and return its rows (from the cache when one is configured and fresh).

        Raises:
            DatabaseError: the statement failed (a DatabaseUnavailableError when the server
                could not be reached, CircuitOpenError when the breaker is open, QueryTimeoutError
                or PoolTimeoutError when a limit was hit).
        """
        if self.cache is not None:
            cached = self.cache.get(sql, params)
            if cached is not None:
                trace.get_current_span().add_event(EVENT_CACHE_HIT)
                return cached
        rows = self._call(sql, params, write=False, run=fetch_rows)
        if self.cache is not None:
            self.cache.put(sql, params, rows)
        return rows

    def execute(self, sql: str, params: Params = None) -> int | None:
        """Run a write or DDL; return the affected row count when the database reports one.

        A write is retried only when it provably never reached the database.

        Raises:
            DatabaseError: as for :meth:`query`.
        """
        try:
            return self._call(sql, params, write=True, run=execute_statement)
        finally:
            if self.cache is not None:
                self.cache.clear()

    def close(self) -> None:
        """Close the pool's connections (those in use close when they come back)."""
        self.pool.close()

    def status(self) -> dict[str, Any]:
        """The safeguards' state, for status pages and tests."""
        return {
            "breaker": self.breaker.state.value,
            "consecutive_failures": self.breaker.failures,
            "breaker_opened": self.breaker.opened,
            "pool_size": self.pool.size,
            "pool_idle": self.pool.idle,
            "in_flight": self.limiter.in_flight,
            "attempts": self.attempts,
            "retries": self.retries,
            "cache_entries": len(self.cache) if self.cache is not None else 0,
        }

    def _call(
        self, sql: str, params: Params, *, write: bool,
        run: Callable[..., T],
    ) -> T:
        with self.limiter.slot():
            attempt = 0
            while True:
                attempt += 1
                try:
                    return self._attempt(sql, params, run)
                except Exception as exc:
                    if isinstance(exc, CircuitOpenError | PoolTimeoutError) or (
                        isinstance(exc, AurumOtelError) and not isinstance(exc, DatabaseError)
                    ):
                        # Fail fast (open circuit), already waited (no free slot), or our own
                        # configuration error: nothing a retry could fix.
                        raise
                    kind = classify(exc)
                    if not self.options.retry.should_retry(kind, attempt, write=write):
                        raise translate(exc, secrets=self.config.secrets) from scrubbed_cause(
                            exc, self.config.secrets)
                    delay = self.options.retry.backoff(attempt, self._rand)
                    self.retries += 1
                    trace.get_current_span().add_event(EVENT_RETRY, {
                        "aurum.db.attempt": attempt,
                        "error.type": error_type(exc),
                        "aurum.db.backoff_s": delay,
                    })
                    logger.info(
                        "%s attempt %d on %s failed (%s); retrying in %.3fs",
                        operation_name(sql) or "statement", attempt, self.config.target,
                        error_type(exc), delay,
                    )
                    self._sleep(delay)

    def _attempt(self, sql: str, params: Params, run: Callable[..., T]) -> T:
        self.breaker.acquire()
        try:
            pooled = self.pool.checkout()
        except BaseException as exc:
            self._judge(exc)
            raise
        self.attempts += 1
        watchdog = _Watchdog(self.options.query_timeout, pooled.connection)
        try:
            with self.spans.statement(sql) as span:
                try:
                    result = run(pooled.connection, sql, params, watch=watchdog.watch)
                except Exception as exc:
                    if watchdog.fired:
                        raise QueryTimeoutError(watchdog.limit, operation_name(sql)) from exc
                    raise
                finally:
                    watchdog.stop()
                if watchdog.fired:
                    # A cancelled Trino query can end without an error, its rows cut short.
                    raise QueryTimeoutError(watchdog.limit, operation_name(sql))
                if isinstance(result, Rows) and span.is_recording():
                    span.set_attribute(DB_RESPONSE_RETURNED_ROWS, len(result))
        except BaseException as exc:
            self._judge(exc)
            # Only a statement the server rejected leaves its connection in a known state.
            reusable = isinstance(exc, Exception) and classify(exc) is ErrorKind.FATAL
            self.pool.release(pooled, discard=not reusable)
            raise
        self.pool.release(pooled)
        self.breaker.record_success()
        return result

    def _judge(self, exc: BaseException) -> None:
        """Tell the breaker what a failed attempt says about the server."""
        if isinstance(exc, PoolTimeoutError) or (
            isinstance(exc, AurumOtelError) and not isinstance(exc, DatabaseError)
        ):
            self.breaker.cancel()  # a local limit or our configuration: no verdict on the server
        elif not isinstance(exc, Exception) or classify(exc).server_failure:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()  # the server answered; the statement was wrong


def _health_check(connection: DBAPIConnection) -> None:
    fetch_rows(connection, "SELECT 1")


class _Watchdog:
    """Cancels a statement that outlives its time limit, from a timer thread."""

    __slots__ = ("_connection", "_timer", "fired", "timeout")

    @property
    def limit(self) -> float:
        return self.timeout or 0.0

    def __init__(self, timeout: float | None, connection: DBAPIConnection) -> None:
        self.timeout = timeout
        self.fired = False
        self._connection = connection
        self._timer: threading.Timer | None = None

    def watch(self, cursor: DBAPICursor) -> None:
        if self.timeout is None:
            return
        self._timer = threading.Timer(self.timeout, self._fire, args=(cursor,))
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self, cursor: DBAPICursor) -> None:
        self.fired = True
        try:
            cancel = getattr(cursor, "cancel", None)  # Trino: tells the coordinator to stop
            if callable(cancel):
                cancel()
                return
            interrupt = getattr(self._connection, "interrupt", None)  # sqlite3
            if callable(interrupt):
                interrupt()
        except Exception as exc:
            logger.info("could not cancel a timed-out statement (%s)", type(exc).__name__)


__all__ = ["LegacyOptions", "LegacyTrinoClient"]

"""A concurrency limit: at most N statements in flight, the rest queue for a bounded time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aurum_otel.database.errors import PoolTimeoutError
from aurum_otel.errors import ConfigurationError


class ConcurrencyLimiter:
    """A semaphore whose waiters give up after ``queue_timeout`` with PoolTimeoutError.

    Args:
        limit: statements allowed in flight at once.
        queue_timeout: seconds a statement may wait for a slot.
    """

    def __init__(self, limit: int, queue_timeout: float) -> None:
        if limit < 1 or queue_timeout < 0:
            raise ConfigurationError(
                "max_concurrency/queue_timeout", (limit, queue_timeout),
                "max_concurrency >= 1 and queue_timeout >= 0",
            )
        self.limit = limit
        self.queue_timeout = queue_timeout
        self._semaphore = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block.

        Raises:
            PoolTimeoutError: no slot became free within ``queue_timeout``.
        """
        started = time.monotonic()
        if not self._semaphore.acquire(timeout=self.queue_timeout):
            raise PoolTimeoutError("query slot", self.limit, time.monotonic() - started)
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            self._semaphore.release()

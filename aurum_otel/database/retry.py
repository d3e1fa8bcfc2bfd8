"""The legacy client's retry policy: which failures to retry, and how long to wait between tries."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aurum_otel.database.errors import ErrorKind
from aurum_otel.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, on retryable errors only.

    Attempt ``n`` (from 1) that fails waits ``uniform(0, min(max_delay, base_delay * 2**(n-1)))``
    before the next ("full jitter": clients that failed together do not retry together).

    Attributes:
        max_attempts: attempts per call, the first included (1 disables retries).
        base_delay: seconds; the cap of the first wait.
        max_delay: seconds; no wait is longer.
    """

    max_attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts", self.max_attempts, "an integer >= 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ConfigurationError(
                "base_delay/max_delay", (self.base_delay, self.max_delay),
                "0 <= base_delay <= max_delay",
            )

    def should_retry(self, kind: ErrorKind, attempt: int, *, write: bool) -> bool:
        """Whether a call whose attempt ``attempt`` failed with ``kind`` gets another attempt.

        A write is retried only when it provably never reached the database: retrying one that
        may have been applied could apply it twice.
        """
        if attempt >= self.max_attempts:
            return False
        if kind is ErrorKind.NOT_SENT:
            return True
        return kind is ErrorKind.TRANSIENT and not write

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 1)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return rand() * cap

    def copy(self, **changes: Any) -> RetryPolicy:
        """A new policy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

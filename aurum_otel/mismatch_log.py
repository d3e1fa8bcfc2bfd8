"""Rate-limited mismatch log lines: a few lines per migration, then one line saying how many were not.

A migration that disagrees on every call would otherwise write one WARNING per call. Each migration
has a token bucket: ``burst`` lines at once, refilled at ``burst`` per ``interval`` seconds. A line
that finds the bucket empty is counted, not written; the next line written for that migration (or
:meth:`MismatchLog.flush`, at shutdown) is preceded by ``<name>: suppressed K mismatch log lines``.
Metrics and spans still count every comparison: only the log is thinned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aurum_otel.phase import Comparison

if TYPE_CHECKING:
    from aurum_otel.compare import ComparisonResult
    from aurum_otel.hooks import MismatchReport

DEFAULT_BURST = 5
DEFAULT_INTERVAL = 60.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0
    since: float = 0.0  # when the first suppressed line of the current run was dropped


class MismatchLog:
    """At most ``burst`` lines per ``interval`` seconds per migration, then a summary line.

    Args:
        logger: where the lines go (default ``aurum_otel.mismatch``).
        burst: lines a migration may write at once, and per ``interval``.
        interval: seconds in which the bucket refills completely.
        clock: monotonic seconds (injected in tests).
    """

    def __init__(
        self, logger: logging.Logger | None = None, *, burst: int = DEFAULT_BURST,
        interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or not interval > 0:
            raise ValueError(f"MismatchLog needs burst >= 1 and interval > 0 (got {burst}, "
                             f"{interval}): raise them")
        self.logger = logger or logging.getLogger("aurum_otel.mismatch")
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._rate = burst / interval
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def report(self, report: MismatchReport) -> bool:
        """Log a shadow's report: WARNING for a mismatch, INFO otherwise. Whether it was written."""
        level = logging.WARNING if report.result is Comparison.MISMATCH else logging.INFO
        return self.emit(report.name, report.summary(), level=level)

    def warn(self, name: str, result: ComparisonResult) -> bool:
        """Log a comparison result of migration ``name`` at WARNING. Whether it was written."""
        return self.emit(name, "; ".join((f"{name}: mismatch", *result.differences)))

    def emit(self, name: str, message: str, *, level: int = logging.WARNING) -> bool:
        """Write ``message`` unless ``name``'s bucket is empty (then count it). Whether written.

        A line the logger would not write anyway (its level is off) takes no token.
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                if not bucket.suppressed:
                    bucket.since = now
                bucket.suppressed += 1
                return False
            bucket.tokens -= 1.0
            suppressed, since = bucket.suppressed, bucket.since
            bucket.suppressed = 0
        if suppressed:
            self._summary(name, suppressed, now - since)
        self.logger.log(level, "%s", message)
        return True

    def flush(self) -> None:
        """Write the pending summary line of every migration that has suppressed lines."""
        now = self._clock()
        with self._lock:
            pending = [(name, b.suppressed, now - b.since)
                       for name, b in self._buckets.items() if b.suppressed]
            for name, _, _ in pending:
                self._buckets[name].suppressed = 0
        for name, count, seconds in pending:
            self._summary(name, count, seconds)

    def reset(self) -> None:
        """Forget every bucket and count (for tests: ``aurum_otel.testing.reset()``)."""
        with self._lock:
            self._buckets.clear()

    def _summary(self, name: str, count: int, seconds: float) -> None:
        self.logger.warning(
            "%s: suppressed %d mismatch log line%s in the last %.0fs (at most %d per %gs per "
            "migration; the comparisons metric counts them all)",
            name, count, "" if count == 1 else "s", seconds, self.burst, self.interval,
        )

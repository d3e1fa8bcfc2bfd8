"""Health from this process's own call stream, kept in windowed snapshots.

:class:`HealthReader` reads the cumulative totals of aurum-otel's in-process aggregator (the same
numbers the ``aurum.migration.calls`` counter exports) and keeps a timestamped snapshot at each
evaluation. A window's figures are the latest totals minus the snapshot taken ``window`` seconds
earlier, exactly like PromQL's ``increase()``, and quantiles use Prometheus's
``histogram_quantile`` interpolation, so this source and the Prometheus one agree on the same
traffic. (Within a window shorter than the process's life so far; before that, since start.)
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from aurum_otel.health.stats import SideStats, WindowStats
from aurum_otel.telemetry.aggregate import BOUNDS, Aggregator

Totals = dict[tuple[str, ...], float]


class HealthReader:
    """Windowed health figures of the migrations routed in this process.

    Args:
        aggregator: where the totals come from, or a function that says where (for a reader
            that follows the registry of the moment, as ``setup_telemetry()`` makes).
        clock: monotonic seconds, injected for tests.
        retention: seconds of snapshots kept (the longest window that can be asked for).
    """

    name = "in-process"

    def __init__(self, aggregator: Aggregator | Callable[[], Aggregator], *,
                 clock: Callable[[], float] = time.monotonic, retention: float = 3600.0) -> None:
        self._aggregator = aggregator
        self._clock = clock
        self._retention = retention
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._snapshots: list[Totals] = []

    @property
    def aggregator(self) -> Aggregator:
        aggregator = self._aggregator
        return aggregator if isinstance(aggregator, Aggregator) else aggregator()

    def snapshot(self) -> None:
        """Record the totals now (each :meth:`stats` call does this too)."""
        totals = _totals(self.aggregator)
        now = self._clock()
        with self._lock:
            self._times.append(now)
            self._snapshots.append(totals)
            cut = bisect.bisect_left(self._times, now - self._retention)
            # Keep one snapshot older than the retention as the baseline of the longest window.
            if cut > 1:
                del self._times[: cut - 1]
                del self._snapshots[: cut - 1]

    def stats(self, migration: str, window: float) -> WindowStats:
        """``migration``'s figures over the last ``window`` seconds."""
        self.snapshot()
        with self._lock:
            latest = self._snapshots[-1]
            index = bisect.bisect_right(self._times, self._times[-1] - window) - 1
            baseline = self._snapshots[index] if index >= 0 else {}

        def delta(*key: str) -> float:
            return max(latest.get(key, 0.0) - baseline.get(key, 0.0), 0.0)

        def side(implementation: str) -> SideStats:
            buckets = tuple(
                (edge, delta("bucket", migration, implementation, repr(edge)))
                for edge in (*BOUNDS, float("inf"))
            )
            return SideStats(delta("calls", migration, implementation),
                             delta("errors", migration, implementation),
                             buckets if buckets[-1][1] > 0 else ())

        return WindowStats(
            migration, window,
            legacy=side("legacy"), simplified=side("simplified"),
            matches=delta("comparison", migration, "match"),
            mismatches=delta("comparison", migration, "mismatch"),
            source=self.name,
        )


def _totals(aggregator: Aggregator) -> Totals:
    totals: Totals = defaultdict(float)
    for (name, _phase, implementation, _role, outcome), figures in aggregator.calls().items():
        impl = implementation.value
        totals["calls", name, impl] += figures.count
        if outcome.value == "error":
            totals["errors", name, impl] += figures.count
        running = 0
        for edge, count in zip((*BOUNDS, float("inf")), figures.buckets, strict=True):
            running += count
            totals["bucket", name, impl, repr(edge)] += running
    for (name, _phase, result), count in aggregator.comparisons().items():
        totals["comparison", name, result.value] += count
    return dict(totals)

"""Health from this process's own metric stream: a MetricReader keeping windowed aggregates.

Attach :class:`HealthReader` to the MeterProvider (``setup_telemetry`` and ``testing.capture`` do).
Each evaluation collects the cumulative totals and keeps a timestamped snapshot; a window's figures
are the latest totals minus the snapshot taken ``window`` seconds earlier, exactly like PromQL's
``increase()``, and quantiles use Prometheus's ``histogram_quantile`` interpolation, so this source
and the Prometheus one agree on the same traffic.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData

from aurum_otel import semconv
from aurum_otel.health.stats import SideStats, WindowStats

Totals = dict[tuple[str, ...], float]


class HealthReader(MetricReader):
    """A pull MetricReader that keeps snapshots of aurum-otel's totals for windowed health."""

    name = "in-process"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 retention: float = 3600.0) -> None:
        super().__init__(preferred_temporality={
            Counter: AggregationTemporality.CUMULATIVE,
            Histogram: AggregationTemporality.CUMULATIVE,
        })
        self._clock = clock
        self._retention = retention
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._snapshots: list[Totals] = []
        self._bounds: dict[tuple[str, str], tuple[float, ...]] = {}

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        totals, bounds = _totals(metrics_data)
        now = self._clock()
        with self._lock:
            self._bounds.update(bounds)
            self._times.append(now)
            self._snapshots.append(totals)
            cut = bisect.bisect_left(self._times, now - self._retention)
            # Keep one snapshot older than the retention as the baseline of the longest window.
            if cut > 1:
                del self._times[: cut - 1]
                del self._snapshots[: cut - 1]

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def stats(self, migration: str, window: float) -> WindowStats:
        """Collect now and return ``migration``'s figures over the last ``window`` seconds."""
        try:
            self.collect()
        except Exception:  # not attached to a provider yet: no data
            pass
        with self._lock:
            if not self._snapshots:
                return WindowStats(migration, window, source=self.name)
            latest = self._snapshots[-1]
            index = bisect.bisect_right(self._times, self._times[-1] - window) - 1
            baseline = self._snapshots[index] if index >= 0 else {}
            bounds = dict(self._bounds)

        def delta(*key: str) -> float:
            return max(latest.get(key, 0.0) - baseline.get(key, 0.0), 0.0)

        def side(implementation: str) -> SideStats:
            calls = errors = 0.0
            for key in latest:
                if key[0] == "calls" and key[1] == migration and key[2] == implementation:
                    value = delta(*key)
                    calls += value
                    if key[3] == "error":
                        errors += value
            edges = bounds.get((migration, implementation), ())
            buckets = tuple(
                (edge, delta("bucket", migration, implementation, repr(edge)))
                for edge in (*edges, float("inf"))
            )
            return SideStats(calls, errors, buckets if edges else ())

        return WindowStats(
            migration, window,
            legacy=side("legacy"), simplified=side("simplified"),
            matches=delta("comparison", migration, "match"),
            mismatches=delta("comparison", migration, "mismatch"),
            source=self.name,
        )


def _totals(data: MetricsData) -> tuple[Totals, dict[tuple[str, str], tuple[float, ...]]]:
    totals: Totals = defaultdict(float)
    bounds: dict[tuple[str, str], tuple[float, ...]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == semconv.METRIC_CALLS:
                    for point in metric.data.data_points:
                        a = point.attributes or {}
                        totals["calls", str(a.get(semconv.ATTR_NAME)),
                               str(a.get(semconv.ATTR_IMPLEMENTATION)),
                               str(a.get(semconv.ATTR_OUTCOME))] += point.value  # type: ignore[union-attr]
                elif metric.name == semconv.METRIC_DURATION:
                    for point in metric.data.data_points:
                        a = point.attributes or {}
                        key = (str(a.get(semconv.ATTR_NAME)), str(a.get(semconv.ATTR_IMPLEMENTATION)))
                        edges = tuple(point.explicit_bounds)  # type: ignore[union-attr]
                        bounds[key] = edges
                        running = 0.0
                        for edge, count in zip((*edges, float("inf")), point.bucket_counts,  # type: ignore[union-attr]
                                               strict=False):
                            running += count
                            totals["bucket", *key, repr(edge)] += running
                elif metric.name == semconv.METRIC_COMPARISONS:
                    for point in metric.data.data_points:
                        a = point.attributes or {}
                        totals["comparison", str(a.get(semconv.ATTR_NAME)),
                               str(a.get(semconv.ATTR_COMPARISON))] += point.value  # type: ignore[union-attr]
    return dict(totals), bounds

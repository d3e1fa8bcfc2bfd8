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

from aurum_otel.health.stats import PairStats, SideStats, SplitOf, SplitStats, WindowStats
from aurum_otel.phase import Outcome, Role
from aurum_otel.telemetry.aggregate import BOUNDS, RATIO_BOUNDS, Aggregator

Totals = dict[tuple[object, ...], float]


class HealthReader:
    """Windowed health figures of the migrations routed in this process.

    Args:
        aggregator: where the totals come from, or a function that says where (for a reader
            that follows the registry of the moment, as ``setup_telemetry()`` makes).
        clock: monotonic seconds, injected for tests.
        retention: seconds of snapshots kept (the longest window that can be asked for).
        split_of: ``name -> configured split`` (e.g. ``split_from_steps(registry.step_of)``);
            without it the split rule does not judge this source's figures.
        wall: Unix seconds, to place a step's start (stamped by the store in wall time) among
            the snapshots; ``None`` when ``clock`` does not follow the wall (an injected test
            clock): then only the step changes this reader sees bound the split's window.

    The split is counted on the authoritative calls since the configured step began (from the
    first snapshot taken after its start), never on a previous step's calls, and on the distinct
    routing keys of the step the call path saw (the aggregator starts them afresh at a new
    percent).
    """

    name = "in-process"

    def __init__(self, aggregator: Aggregator | Callable[[], Aggregator], *,
                 clock: Callable[[], float] = time.monotonic, retention: float = 3600.0,
                 split_of: SplitOf | None = None,
                 wall: Callable[[], float] | None = time.time) -> None:
        self._aggregator = aggregator
        self._split_of = split_of
        self._wall = wall
        self._clock = clock
        self._retention = retention
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._snapshots: list[Totals] = []
        # migration -> (step label, when this reader first saw it; None: on its first look)
        self._steps: dict[str, tuple[str, float | None]] = {}

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
        configured = self._split_of(migration) if self._split_of is not None else None
        age = window
        if configured is not None and configured.since is not None and self._wall is not None:
            age = min(window, max(self._wall() - configured.since, 0.0))
        with self._lock:
            latest, now = self._snapshots[-1], self._times[-1]
            if configured is not None:
                # A step change this reader saw bounds the split's window in its own clock too
                # (the store stamps steps in wall time; an injected clock may not follow it).
                seen = self._steps.get(migration)
                if seen is None or seen[0] != configured.step:
                    seen = (configured.step, None if seen is None else now)
                    self._steps[migration] = seen
                if seen[1] is not None:
                    age = min(age, now - seen[1])
            index = bisect.bisect_right(self._times, now - window) - 1
            baseline = self._snapshots[index] if index >= 0 else {}
            split_base, split_window = baseline, window
            first = bisect.bisect_left(self._times, now - age)
            if age < window and (first < len(self._times) - 1 or first > 0):
                # The step began within the window: count from this reader's first look after
                # the start (none since: nothing counted yet). A reader whose first look is now
                # (a process started in this step) reads the window's figures, as the other
                # rules do.
                split_base, split_window = self._snapshots[first], now - self._times[first]

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

        split = None
        if configured is not None:
            def routed(implementation: str) -> float:
                key = ("routed", migration, implementation)
                return max(latest.get(key, 0.0) - split_base.get(key, 0.0), 0.0)
            keys = self.aggregator.routing_keys().get(migration)
            legacy_keys, simplified_keys = 0, 0
            if keys is not None and keys.percent == configured.percent and not (
                    configured.since and keys.since and keys.since != configured.since):
                legacy_keys, simplified_keys = keys.legacy, keys.simplified  # this step's
            split = SplitStats(configured.percent, routed("legacy"), routed("simplified"),
                               split_window, configured.step, self.name,
                               legacy_keys=legacy_keys, simplified_keys=simplified_keys)
        return WindowStats(
            migration, window,
            legacy=side("legacy"), simplified=side("simplified"),
            matches=delta("comparison", migration, "match"),
            mismatches=delta("comparison", migration, "mismatch"),
            source=self.name, split=split, pairs=_pairs(migration, delta),
        )


def _totals(aggregator: Aggregator) -> Totals:
    totals: Totals = defaultdict(float)
    for (name, _phase, implementation, role, outcome), figures in aggregator.calls().items():
        impl = implementation.value
        totals["calls", name, impl] += figures.count
        if role is Role.AUTHORITATIVE and outcome is not Outcome.FALLBACK:
            totals["routed", name, impl] += figures.count
        if outcome.value == "error":
            totals["errors", name, impl] += figures.count
        running = 0
        for edge, count in zip((*BOUNDS, float("inf")), figures.buckets, strict=True):
            running += count
            totals["bucket", name, impl, repr(edge)] += running
    for (name, _phase, result), count in aggregator.comparisons().items():
        totals["comparison", name, result.value] += count
    for (name, legacy_failed, simplified_failed, order, bucket), count in (
            aggregator.pairs().items()):
        totals["pairs", name] += count
        if legacy_failed != simplified_failed:
            totals["pairs", name, "legacy_only" if legacy_failed else "simplified_only"] += count
        if order:
            totals["pairs", name, "slower" if order > 0 else "faster"] += count
        for index in range(bucket, len(RATIO_BOUNDS) + 1):  # cumulative, as Prometheus keeps
            totals["pair_ratio", name, index] += count
    return dict(totals)


def _pairs(migration: str, delta: Callable[..., float]) -> PairStats | None:
    pairs = delta("pairs", migration)
    if not pairs:
        return None
    edges = (*RATIO_BOUNDS, float("inf"))
    return PairStats(pairs, delta("pairs", migration, "legacy_only"),
                     delta("pairs", migration, "simplified_only"),
                     delta("pairs", migration, "slower"), delta("pairs", migration, "faster"),
                     tuple((edge, delta("pair_ratio", migration, i))
                           for i, edge in enumerate(edges)))

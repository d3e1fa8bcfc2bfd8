from __future__ import annotations

import bisect
import math
import threading
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from aurum_otel.phase import Implementation, Outcome, Phase, Role
from aurum_otel.telemetry.aggregate import RATIO_BOUNDS, Aggregator

KEY = ("orders", Phase.HYBRID, Implementation.SIMPLIFIED, Role.AUTHORITATIVE, Outcome.SUCCESS)


def _threads(aggregator: Aggregator, count: int) -> None:
    for _ in range(count):
        thread = threading.Thread(target=aggregator.record_call, args=(KEY, 0.001))
        thread.start()
        thread.join()


def test_finished_threads_tables_are_folded_without_any_reader() -> None:
    """Issue 12.14: short-lived threads must not leave a table each when nothing collects."""
    aggregator = Aggregator()
    _threads(aggregator, 200)  # warm-up: interpreter caches, thread-name counters
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        _threads(aggregator, 3000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                if "aggregate.py" in str(stat.traceback) or "threading.py" in str(stat.traceback))
    assert grown < 100_000, f"{grown} bytes kept by 3,000 finished threads"
    assert aggregator.table_count <= 3  # the shared total, at most a dying thread's, ours
    totals = aggregator.calls()[KEY]
    assert totals.count == 3200 and sum(totals.buckets) == 3200  # nothing lost in the fold


def test_live_threads_keep_their_own_tables_and_add_up() -> None:
    aggregator = Aggregator()
    go, done = threading.Event(), threading.Barrier(9)

    def work() -> None:
        for _ in range(100):
            aggregator.record_call(KEY, 0.002)
        done.wait()
        go.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    done.wait()
    assert aggregator.table_count == 9 and aggregator.calls()[KEY].count == 800
    go.set()
    for thread in threads:
        thread.join()
    aggregator.record_call(KEY, 0.002)
    assert aggregator.calls()[KEY].count == 801


def test_the_first_call_of_a_migration_creates_every_phases_series_at_zero() -> None:
    """Issue 13.13: the series an advance will send traffic to exist before it, at zero."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from aurum_otel import migrated
    from aurum_otel.registry import configure

    reader = InMemoryMetricReader()
    configure(meter_provider=MeterProvider(metric_readers=[reader]))

    @migrated("orders")
    def load() -> int:
        return 1

    @load.simplified
    def _load() -> int:
        return 2

    load()  # one legacy call, in the legacy phase
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (p.attributes["aurum.migration.phase"], p.attributes["aurum.migration.implementation"],
         p.attributes["aurum.migration.role"], p.attributes.get("aurum.migration.outcome",
                                                                p.attributes.get(
                                                                    "aurum.migration.comparison"))
         ): p.value
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == "aurum.migration.calls" for p in m.data.data_points
        if p.attributes["aurum.migration.name"] == "orders"
    }
    assert points[("legacy", "legacy", "authoritative", "success")] == 1
    for phase in ("hybrid", "simplified"):
        assert points[(phase, "simplified", "authoritative", "error")] == 0
        assert points[(phase, "simplified", "authoritative", "success")] == 0
    assert points[("hybrid", "simplified", "shadow", "error")] == 0
    comparisons = [p for rm in data.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics if m.name == "aurum.migration.comparisons"
                   for p in m.data.data_points]
    assert {p.attributes["aurum.migration.comparison"] for p in comparisons} >= {"match",
                                                                                "mismatch"}


@settings(max_examples=300, deadline=None)
@given(legacy=st.floats(min_value=0, max_value=10, allow_nan=False),
       simplified=st.floats(min_value=0, max_value=10, allow_nan=False),
       failed=st.tuples(st.booleans(), st.booleans()))
def test_a_pair_lands_in_the_bucket_of_its_ratio(legacy: float, simplified: float,
                                                 failed: tuple[bool, bool]) -> None:
    aggregator = Aggregator()
    aggregator.record_pair("m", failed[0], failed[1], legacy, simplified)
    ((name, legacy_failed, simplified_failed, order, index), count), = (
        aggregator.pairs().items())
    assert (name, legacy_failed, simplified_failed, count) == ("m", *failed, 1)
    assert order == (simplified > legacy) - (simplified < legacy)
    # a tie is a ratio of 1, even at 0 s
    ratio = 1.0 if simplified == legacy else (simplified / legacy if legacy > 0 else math.inf)
    assert index == bisect.bisect_left(RATIO_BOUNDS, ratio)

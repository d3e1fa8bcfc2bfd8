"""Shared pieces of the benchmarks: offline telemetry providers, the timing harness, machine info.

Nothing here reaches the network: spans and metrics go to exporters that drop them, after the SDK
has done all of its work on them (batching, collection, export call).
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

# --------------------------------------------------------------------------------------------
# Offline telemetry


class DropSpanExporter(SpanExporter):
    """Accepts every batch and throws it away (counts them, so a run can show nothing was lost)."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class DropMetricExporter(MetricExporter):
    """Accepts every collection and throws it away."""

    def __init__(self) -> None:
        super().__init__()
        self.exports = 0

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exports += 1
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@dataclass
class Telemetry:
    """An SDK TracerProvider (BatchSpanProcessor) and MeterProvider (PeriodicExportingMetricReader),
    both exporting to exporters that drop, shared by ours and the naive peer."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    span_exporter: DropSpanExporter
    metric_exporter: DropMetricExporter
    reader: PeriodicExportingMetricReader

    def flush(self) -> None:
        """Finish every piece of deferred work now: export queued spans, collect and export metrics."""
        self.tracer_provider.force_flush()
        self.reader.force_flush()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def make_telemetry(*, export_interval_millis: int = 200, max_queue_size: int = 1 << 17,
                   sampler: Any = None) -> Telemetry:
    """Providers as an application would set them up, with exporters that drop.

    The span queue is large enough that the BatchSpanProcessor never sheds a span inside one timed
    batch (every batch ends with a flush), so dropping spans can never make a side look cheaper.
    The metric reader exports every ``export_interval_millis`` *during* the run. ``sampler``:
    the SDK's default (parent-based, always on) unless given.
    """
    span_exporter = DropSpanExporter()
    tracer_provider = TracerProvider(sampler=sampler)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter, max_queue_size=max_queue_size, max_export_batch_size=512)
    )
    metric_exporter = DropMetricExporter()
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=export_interval_millis)
    meter_provider = MeterProvider(metric_readers=[reader])
    return Telemetry(tracer_provider, meter_provider, span_exporter, metric_exporter, reader)


# --------------------------------------------------------------------------------------------
# The functions being migrated (small, pure, realistic shapes: a settings-like dict)


def legacy_impl(user: int = 7) -> dict[str, Any]:
    return {"user": user, "region": "eu-west-1", "features": ["a", "b", "c"], "limit": 100}


def simplified_impl(user: int = 7) -> dict[str, Any]:
    return {"user": user, "region": "eu-west-1", "features": ["a", "b", "c"], "limit": 100}


class NetworkGuard:
    """Refuses every outgoing connection in this process and remembers the attempts, so a run can
    show that no peer (LaunchDarkly included) and no exporter reached the network."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def install(self) -> NetworkGuard:
        import socket

        guard = self

        def refuse(sock: Any, address: Any) -> Any:
            guard.attempts.append(repr(address))
            raise OSError(f"benchmarks run offline: connection to {address!r} refused")

        socket.socket.connect = refuse  # type: ignore[method-assign]
        socket.socket.connect_ex = refuse  # type: ignore[method-assign]
        return self


# --------------------------------------------------------------------------------------------
# Timing

Batch = Callable[[int], None]
"""Runs ``n`` calls and then finishes their deferred work (flush, shadows joined)."""


@dataclass
class Paired:
    """Two sides timed in alternating rounds within one process."""

    a_us: float  # median per-call microseconds of side a
    b_us: float
    ratio: float  # median over rounds of (a time / b time)
    ratio_low: float  # quartiles of the per-round ratios (spread)
    ratio_high: float
    rounds: int
    n: int
    clock: str
    a_wall_us: float = 0.0
    b_wall_us: float = 0.0
    samples: list[float] = field(default_factory=list)


def _time(batch: Batch, n: int) -> tuple[float, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    batch(n)
    return time.process_time() - cpu0, time.perf_counter() - wall0


def paired(a: Batch, b: Batch, *, n: int, rounds: int, warmup: int = 1) -> Paired:
    """Time ``a`` and ``b`` side by side: ``rounds`` rounds of one batch each, order alternating.

    The primary clock is the process's CPU time (every thread: the caller, the shadow workers, the
    span processor and the metric reader), which counts deferred work and is robust to the machine
    being shared; wall time is kept too.
    """
    for _ in range(warmup):
        a(max(n // 4, 1))
        b(max(n // 4, 1))
    cpu_a: list[float] = []
    cpu_b: list[float] = []
    wall_a: list[float] = []
    wall_b: list[float] = []
    ratios: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            ca, wa = _time(a, n)
            cb, wb = _time(b, n)
        else:
            cb, wb = _time(b, n)
            ca, wa = _time(a, n)
        cpu_a.append(ca)
        cpu_b.append(cb)
        wall_a.append(wa)
        wall_b.append(wb)
        ratios.append(ca / cb if cb > 0 else float("inf"))
    low, high = quartiles(ratios)
    return Paired(
        a_us=statistics.median(cpu_a) / n * 1e6,
        b_us=statistics.median(cpu_b) / n * 1e6,
        ratio=statistics.median(ratios),
        ratio_low=low,
        ratio_high=high,
        rounds=rounds,
        n=n,
        clock="process CPU",
        a_wall_us=statistics.median(wall_a) / n * 1e6,
        b_wall_us=statistics.median(wall_b) / n * 1e6,
        samples=ratios,
    )


def paired_wall(a: Callable[..., Any], b: Callable[..., Any], *, n: int, rounds: int,
                after: Callable[[], None], warmup: int = 1) -> Paired:
    """The caller's view: wall time of ``n`` calls timed in the calling thread only (``timeit``
    style, ``perf_counter`` around the loop). Deferred work (span export, the metric reader every
    200 ms, shadow workers) runs on its own threads meanwhile and competes for the GIL and the CPU as
    in a service, but ``after()`` (flush, join) runs outside the timed region. Rounds alternate
    A B, B A as in ``paired``."""

    def timed(fn: Callable[..., Any]) -> float:
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            fn(7)
        elapsed = time.perf_counter() - started
        after()
        return elapsed

    for _ in range(warmup):
        timed(a)
        timed(b)
    wall_a: list[float] = []
    wall_b: list[float] = []
    ratios: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            wa = timed(a)
            wb = timed(b)
        else:
            wb = timed(b)
            wa = timed(a)
        wall_a.append(wa)
        wall_b.append(wb)
        ratios.append(wa / wb if wb > 0 else float("inf"))
    low, high = quartiles(ratios)
    return Paired(
        a_us=statistics.median(wall_a) / n * 1e6, b_us=statistics.median(wall_b) / n * 1e6,
        ratio=statistics.median(ratios), ratio_low=low, ratio_high=high, rounds=rounds, n=n,
        clock="caller wall", a_wall_us=statistics.median(wall_a) / n * 1e6,
        b_wall_us=statistics.median(wall_b) / n * 1e6, samples=ratios,
    )


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_threads(target: Callable[[], None], count: int) -> float:
    """Run ``target`` on ``count`` threads started together; wall seconds until all are done."""
    barrier = threading.Barrier(count + 1)

    def work() -> None:
        barrier.wait()
        target()

    threads = [threading.Thread(target=work, name=f"bench-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    gc.collect()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def time_once(fn: Callable[..., Any]) -> float:
    started = time.perf_counter()
    fn(7)
    return time.perf_counter() - started


def caller_latencies(sides: dict[str, Callable[..., Any]], samples: int,
                     block: int = 10, pause: float = 0.0) -> dict[str, list[float]]:
    """Caller latency of each side, in blocks of ``block`` consecutive calls per side, the sides'
    blocks interleaved so they share the machine's conditions. Within a block a side meets its own
    background work (our shadows of the previous calls compete for the GIL with the next call, as
    in a service); the first call of each block is not kept, so one side's background work is not
    charged to the next side. ``pause`` seconds pass (untimed) after every call, as between a
    service's requests."""
    names = list(sides)
    for name in names:
        time_once(sides[name])
    found: dict[str, list[float]] = {name: [] for name in names}
    i = 0
    while any(len(found[name]) < samples for name in names):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            fn = sides[name]
            time_once(fn)  # not kept: may meet the previous side's background work
            for _ in range(block - 1):
                if len(found[name]) < samples:
                    found[name].append(time_once(fn))
                    if pause:
                        time.sleep(pause)
        i += 1
    return found


# --------------------------------------------------------------------------------------------
# Memory


def rss_bytes() -> int:
    """Current resident set size (not the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

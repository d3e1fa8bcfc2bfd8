"""aurum-otel against its peers: overhead, shadow cost, scaling, latency, hung shadows, memory.

    make bench                                  # set up .venv with the bench extra, full run
    .venv/bin/python benchmarks/run.py --quick  # a short run (about a minute)
    .venv/bin/python benchmarks/run.py --only 1,3 --json out.json --markdown

Every figure is a ratio measured side by side in this one process (measure 7 in a child process):
both sides use the same OpenTelemetry SDK providers, exporting to exporters that drop, with every
deferred piece of work (span export, metric collection/export, shadow runs) finished inside the
timed region. Nothing reaches the network. The run reports; it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Measure 3 turns monitoring off for one migration through the environment, before aurum_otel reads
# its flags (the library itself never writes os.environ). The other migrations stay monitored.
os.environ["AURUM_MIGRATION_BENCH_OFF_MONITORING"] = "0"
os.environ.setdefault("AURUM_STATE_DIR", tempfile.mkdtemp(prefix="aurum-bench-state-"))

from _common import (  # noqa: E402
    NetworkGuard,
    Telemetry,
    caller_latencies,
    legacy_impl,
    machine,
    make_telemetry,
    paired,
    paired_wall,
    percentile,
    run_threads,
    simplified_impl,
    time_once,
    versions,
)
from _peers import (  # noqa: E402
    LaunchDarkly,
    LaunchDarklyTraced,
    laboratory_experiment,
    naive_instrumented,
    passthrough,
)
from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: E402
from opentelemetry.trace import set_span_in_context  # noqa: E402

import aurum_otel  # noqa: E402
from aurum_otel import BaseHooks, FileStore, MismatchReport, Phase, Rollout, migrated  # noqa: E402
from aurum_otel.telemetry.instruments import feature_flag_event  # noqa: E402
from aurum_otel.telemetry.sdk import add_event_at, frozen_attributes  # noqa: E402

SLEEP = 0.010  # measures 5 and 6: each implementation sleeps 10 ms


@dataclass
class Row:
    measure: str
    ours: str
    peer: str
    figure: float
    op: str  # "<=", ">=", "<", "info"
    target: float | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.op == "info" or self.target is None:
            return "info"
        ok = {"<=": self.figure <= self.target, ">=": self.figure >= self.target,
              "<": self.figure < self.target}[self.op]
        return "PASS" if ok else "FAIL"

    @property
    def target_text(self) -> str:
        return "—" if self.op == "info" or self.target is None else f"{self.op} {self.target:g}"


@dataclass
class Sizes:
    rounds: int
    n_call: int  # calls per batch, measure 1
    n_hybrid: int  # calls per batch, measure 2
    n_off: int  # calls per batch, measure 3
    n_threads: int  # total calls per throughput run, measure 4
    thread_rounds: int
    latency_samples: int  # per side, measures 5 and 6
    flood: int  # measure 6: calls while the shadow hangs
    rss_calls: int
    rss_warmup: int


FULL = Sizes(rounds=15, n_call=2000, n_hybrid=600, n_off=20000, n_threads=1500, thread_rounds=15,
             latency_samples=150, flood=3000, rss_calls=1_000_000, rss_warmup=100_000)
QUICK = Sizes(rounds=5, n_call=600, n_hybrid=200, n_off=5000, n_threads=600, thread_rounds=5,
              latency_samples=40, flood=1500, rss_calls=50_000, rss_warmup=10_000)


class Outcomes(BaseHooks):
    """Counts shadow comparisons that did not match (timeouts, drops) for measure 6."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_mismatch(self, report: MismatchReport) -> None:
        with self._lock:
            self.counts[report.result.value] += 1


class Bench:
    """The migrations under test, configured once on shared offline providers."""

    def __init__(self, telemetry: Telemetry, state_dir: str) -> None:
        self.telemetry = telemetry
        store = FileStore.in_dir(state_dir)
        aurum_otel.configure(store=store, tracer_provider=telemetry.tracer_provider,
                             meter_provider=telemetry.meter_provider, refresh_interval=0.5)
        hybrid = Rollout(percent=0, compare=100)
        for name in ("bench_legacy", "bench_off", "bench_sleep_legacy"):
            store.transition(name, Phase.LEGACY, actor="bench", reason="bench")
        for name in ("bench_hybrid", "bench_hybrid_capture", "bench_hybrid_nocopy",
                     "bench_hybrid_sampled", "bench_sleep",
                     "bench_hang", "bench_hang_fast"):
            store.transition(name, Phase.HYBRID, hybrid, actor="bench", reason="bench")
        self.registry = aurum_otel.get_registry()
        self.release = threading.Event()  # lets the hung shadows of measure 6 go at the end
        self.hang_outcomes = Outcomes()

        def define(name: str, legacy: Callable[..., Any], simplified: Callable[..., Any],
                   **options: Any) -> Any:
            fn = migrated(name, **options)(legacy)
            fn.simplified(simplified)
            return fn

        def sleeping(user: int = 7) -> dict[str, Any]:
            time.sleep(SLEEP)
            return legacy_impl(user)

        def sleeping_v2(user: int = 7) -> dict[str, Any]:
            time.sleep(SLEEP)
            return simplified_impl(user)

        def hanging(user: int = 7) -> dict[str, Any]:
            self.release.wait(120)  # "hangs" until the benchmark lets it go
            return simplified_impl(user)

        self.sleeping, self.sleeping_v2, self.hanging = sleeping, sleeping_v2, hanging
        self.legacy = define("bench_legacy", legacy_impl, simplified_impl)
        self.hybrid = define("bench_hybrid", legacy_impl, simplified_impl)
        self.hybrid_capture = define("bench_hybrid_capture", legacy_impl, simplified_impl,
                                     capture=True)
        self.hybrid_nocopy = define("bench_hybrid_nocopy", legacy_impl, simplified_impl,
                                    copy_args=False)
        # A common production setting: 1 trace in 10 recorded (parent-based), counts exact.
        self.sampled = make_telemetry(sampler=ParentBased(TraceIdRatioBased(0.1)))
        self.hybrid_sampled = define("bench_hybrid_sampled", legacy_impl, simplified_impl,
                                     tracer_provider=self.sampled.tracer_provider,
                                     meter_provider=self.sampled.meter_provider)
        self.off = define("bench_off", legacy_impl, simplified_impl)
        self.sleep = define("bench_sleep", sleeping, sleeping_v2)
        self.sleep_legacy = define("bench_sleep_legacy", sleeping, sleeping_v2)
        tracer = telemetry.tracer_provider.get_tracer("bench.span")

        def one_span(user: int = 7) -> dict[str, Any]:
            span = tracer.start_span("one span")
            try:
                return sleeping(user)
            finally:
                span.end()

        self.sleep_one_span = one_span
        self.sleep_naive = naive_instrumented(sleeping, "bench_sleep_legacy",
                                              telemetry.tracer_provider, telemetry.meter_provider)
        self.hang = define("bench_hang", sleeping, hanging, shadow_timeout=0.5,
                           hooks=self.hang_outcomes)
        self.hang_fast = define("bench_hang_fast", legacy_impl, hanging,
                                shadow_timeout=0.5, hooks=self.hang_outcomes)
        self.naive = naive_instrumented(legacy_impl, "bench_legacy",
                                        telemetry.tracer_provider, telemetry.meter_provider)
        self.passthrough = passthrough(legacy_impl)

    def join_shadows(self) -> None:
        if not self.registry.shadows.join(120):
            raise RuntimeError("shadows did not finish within 120 s")


def two_spans(telemetry: Telemetry) -> Callable[..., Any]:
    """The least any hybrid call under the telemetry contract does: the call's span and its
    shadow's child span with the contract's attributes, both implementations, ``==``."""
    tracer = telemetry.tracer_provider.get_tracer("bench.floor")
    call_attributes = {"aurum.migration.name": "bench_floor", "aurum.migration.phase": "hybrid",
                       "aurum.migration.implementation": "legacy",
                       "aurum.migration.outcome": "success"}
    shadow_attributes = {"aurum.migration.name": "bench_floor", "aurum.migration.phase": "hybrid",
                         "aurum.migration.implementation": "simplified",
                         "aurum.migration.role": "shadow"}

    def call(user: int = 7) -> dict[str, Any]:
        span = tracer.start_span("migrate bench_floor", attributes=call_attributes)
        value = legacy_impl(user)
        span.end()
        shadow = tracer.start_span("shadow bench_floor", context=set_span_in_context(span),
                                   attributes=shadow_attributes)
        other = simplified_impl(user)
        shadow.set_attribute("aurum.migration.comparison", "match" if other == value else "mismatch")
        shadow.end()
        return value

    return call


def one_span(telemetry: Telemetry) -> Callable[..., Any]:
    """The least a legacy-phase call under the telemetry contract does: its span with the
    contract's attributes, current while the function runs, and the ``feature_flag.evaluation``
    event (attributes validated once, as aurum-otel adds it); counts excluded (aurum-otel keeps
    them in a lock-free aggregator, ~1 µs)."""
    tracer = telemetry.tracer_provider.get_tracer("bench.floor1")
    attributes = {"aurum.migration.name": "bench_floor1", "aurum.migration.phase": "legacy",
                  "aurum.migration.implementation": "legacy",
                  "aurum.migration.outcome": "success"}
    event = frozen_attributes(feature_flag_event("bench_floor1", Phase.LEGACY, "store"))

    def call(user: int = 7) -> dict[str, Any]:
        span = tracer.start_span("migrate bench_floor1", attributes=attributes)
        add_event_at(span, "feature_flag.evaluation", event, None)
        token = otel_context.attach(set_span_in_context(span))
        try:
            return legacy_impl(user)
        finally:
            otel_context.detach(token)
            span.end()

    return call


def calls(fn: Callable[..., Any], after: Callable[[], None]) -> Callable[[int], None]:
    def batch(n: int) -> None:
        for _ in range(n):
            fn(7)
        after()

    return batch


# ---------------------------------------------------------------------------------------------


def measure_legacy_call_vs_naive_otel(bench: Bench, sizes: Sizes) -> list[Row]:
    flush = bench.telemetry.flush
    result = paired(calls(bench.legacy, flush), calls(bench.naive, flush), n=sizes.n_call,
                    rounds=sizes.rounds)
    wall = paired_wall(bench.legacy, bench.naive, n=sizes.n_call, rounds=sizes.rounds, after=flush)
    floor = paired(calls(one_span(bench.telemetry), flush), calls(bench.naive, flush),
                   n=sizes.n_call, rounds=sizes.rounds)
    ours_vs_floor = paired(calls(bench.legacy, flush), calls(one_span(bench.telemetry), flush),
                           n=sizes.n_call, rounds=sizes.rounds)
    return [Row(
        "1. routed call, legacy phase, full telemetry vs naive OTel (CPU/call)",
        f"{result.a_us:.1f} µs", f"{result.b_us:.1f} µs (naive)", result.ratio, "<=", 0.40,
        notes=_spread(result) + f"; wall {result.a_wall_us:.1f} vs {result.b_wall_us:.1f} µs",
        extra=asdict(result),
    ), Row(
        "1w. the same, wall time in the caller's thread (timeit; flush outside the timed loop)",
        f"{wall.a_us:.1f} µs", f"{wall.b_us:.1f} µs (naive)", wall.ratio, "<=", 0.45,
        notes=_spread(wall), extra=asdict(wall),
    ), Row(
        "1d. floor of the contract for 1: the call's span (contract attributes, current during "
        "the call) + its feature_flag.evaluation event, nothing else, vs naive OTel",
        f"{floor.a_us:.1f} µs", f"{floor.b_us:.1f} µs (naive)", floor.ratio, "info", None,
        notes=_spread(floor), extra=asdict(floor),
    ), Row(
        "1e. ours (row 1) vs that floor", f"{ours_vs_floor.a_us:.1f} µs",
        f"{ours_vs_floor.b_us:.1f} µs (floor)", ours_vs_floor.ratio, "info", None,
        notes=_spread(ours_vs_floor), extra=asdict(ours_vs_floor),
    )]


def measure_hybrid_call_vs_peers(bench: Bench, sizes: Sizes) -> list[Row]:
    flush = bench.telemetry.flush

    def awaiting_shadows(telemetry: Telemetry) -> Callable[[], None]:
        def after() -> None:
            bench.join_shadows()  # the shadows are part of the cost
            telemetry.flush()

        return after

    ld = LaunchDarkly(legacy_impl, simplified_impl)
    ld_traced = LaunchDarklyTraced(legacy_impl, simplified_impl, bench.telemetry.tracer_provider)
    lab = laboratory_experiment(legacy_impl, simplified_impl)
    floor = two_spans(bench.telemetry)

    def versus(label: str, ours: Callable[[int], None], peer: Callable[..., Any], peer_name: str,
               target: tuple[str, float | None] = ("info", None), note: str = "") -> Row:
        result = paired(ours, calls(peer, flush), n=sizes.n_hybrid, rounds=sizes.rounds)
        return Row(label, f"{result.a_us:.1f} µs", f"{result.b_us:.1f} µs ({peer_name})",
                   result.ratio, *target, notes=note + _spread(result), extra=asdict(result))

    ours = calls(bench.hybrid, awaiting_shadows(bench.telemetry))
    try:
        wall = paired_wall(bench.hybrid, ld_traced.read, n=sizes.n_hybrid, rounds=sizes.rounds,
                           after=awaiting_shadows(bench.telemetry))
        rows = [
            versus("2. hybrid, shadow+compare every call vs the contract's floor (row 2d's two spans)",
                   ours, floor, "floor", ("<=", 1.5)),
            versus("2g. the same vs LaunchDarkly Migrator.read (shadow, serial) + its OTel tracing "
                   "hook (spans on) inside a user span", ours, ld_traced.read, "LD+otel",
                   ("<=", 0.45), note="ldotel.tracing.Hook(add_spans=True), global provider = ours; "),
            Row("2gw. the same, wall time in the caller's thread (timeit; shadows joined and "
                "flushed outside the timed loop)", f"{wall.a_us:.1f} µs",
                f"{wall.b_us:.1f} µs (LD+otel)", wall.ratio, "<=", 0.45,
                notes="our shadows run on workers during the loop and compete for the CPU; "
                      + _spread(wall), extra=asdict(wall)),
            versus("2a. the same hybrid call vs LaunchDarkly Migrator.read (shadow, serial, no "
                   "telemetry)", ours, ld.read, "LD"),
            versus("2b. same vs laboratory.Experiment (serial, no telemetry)", ours, lab, "lab"),
            versus("2c. same with copy_args=False vs LaunchDarkly",
                   calls(bench.hybrid_nocopy, awaiting_shadows(bench.telemetry)), ld.read, "LD"),
            versus("2d. floor of the contract: the call's span and its shadow's span alone vs "
                   "LaunchDarkly", calls(floor, flush), ld.read, "LD",
                   note=("two SDK spans with the contract's attributes, start + end + export, "
                         "both implementations and == inline; no routing, copies, metrics or "
                         "threads; ")),
        ]
        capture = paired(calls(bench.hybrid_capture, awaiting_shadows(bench.telemetry)), ours,
                         n=sizes.n_hybrid, rounds=sizes.rounds)
        rows.append(Row(
            "2h. capture on (capture=True), no mismatch, vs capture off (both hybrid, shadows awaited)",
            f"{capture.a_us:.1f} µs", f"{capture.b_us:.1f} µs (capture off)", capture.ratio,
            "<=", 1.02, notes=_spread(capture), extra=asdict(capture),
        ))
        latency = caller_latencies({"ours": bench.hybrid, "LaunchDarkly": ld.read},
                                   sizes.latency_samples, pause=0.002)
        bench.join_shadows()
        p50 = {side: percentile(values, 50) for side, values in latency.items()}
        rows.append(Row(
            "2e. the same hybrid call, caller p50 latency (2 ms between calls) vs LaunchDarkly",
            f"{p50['ours'] * 1e6:.1f} µs", f"{p50['LaunchDarkly'] * 1e6:.1f} µs (LD)",
            p50["ours"] / p50["LaunchDarkly"], "info", None,
            notes=(f"what the caller waits: ours runs the shadow on a worker between calls; "
                   f"{sizes.latency_samples} calls per side, interleaved blocks of 10"),
            extra={side: {"p50": p50[side], "p95": percentile(v, 95)} for side, v in latency.items()},
        ))
        rows.append(versus(
            "2f. the hybrid call of 2 under a 10 % parent-based trace sampler vs LaunchDarkly",
            calls(bench.hybrid_sampled, awaiting_shadows(bench.sampled)), ld.read, "LD",
            note=("ParentBased(TraceIdRatioBased(0.1)) on our own providers: 1 call in 10 records "
                  "its two spans, every call and comparison still counted; "),
        ))
    finally:
        ld.close()
        ld_traced.close()
    return rows


def measure_monitoring_off_vs_plain_decorator(bench: Bench, sizes: Sizes) -> list[Row]:
    def nothing() -> None:
        pass

    result = paired(calls(bench.off, nothing), calls(bench.passthrough, nothing), n=sizes.n_off,
                    rounds=sizes.rounds)
    return [Row(
        "3. monitoring off (AURUM_MIGRATION_<NAME>_MONITORING=0) vs functools.wraps pass-through",
        f"{result.a_us:.2f} µs", f"{result.b_us:.2f} µs (wraps)", result.ratio, "<=", 2.0,
        notes=_spread(result), extra=asdict(result),
    )]


def measure_two_threads_vs_one(bench: Bench, sizes: Sizes) -> list[Row]:
    flush = bench.telemetry.flush
    total = sizes.n_threads

    def throughput(fn: Callable[..., Any], threads: int) -> tuple[float, float]:
        """(wall seconds, process-CPU seconds) for ``total`` calls split over ``threads``."""
        per = total // threads

        def work() -> None:
            for _ in range(per):
                fn(7)

        cpu = time.process_time()
        elapsed = run_threads(work, threads)
        started = time.perf_counter()
        flush()
        return elapsed + time.perf_counter() - started, time.process_time() - cpu

    sides = {"ours": bench.legacy, "naive": bench.naive}
    for fn in sides.values():  # warm up both thread counts
        throughput(fn, 1)
        throughput(fn, 2)
    wall: dict[str, list[float]] = {"ours": [], "naive": []}
    cpu: dict[str, list[float]] = {"ours": [], "naive": []}
    single: dict[str, list[float]] = {"ours": [], "naive": []}
    for r in range(sizes.thread_rounds):
        order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
        for side, fn in order:
            if r % 2 == 0:
                one, two = throughput(fn, 1), throughput(fn, 2)
            else:
                two, one = throughput(fn, 2), throughput(fn, 1)
            wall[side].append(one[0] / two[0])  # throughput(2 threads) / throughput(1 thread)
            cpu[side].append(one[1] / two[1])  # the same per CPU second spent
            single[side].append(total / one[0])
    ours, naive = statistics.median(wall["ours"]), statistics.median(wall["naive"])
    return [Row(
        "4. throughput 2 threads / 1 thread, legacy phase, full telemetry (wall)",
        f"x{ours:.2f}", f"x{naive:.2f} (naive)", ours, ">=", 0.85,
        notes=(f"per CPU second: ours x{statistics.median(cpu['ours']):.2f}, naive "
               f"x{statistics.median(cpu['naive']):.2f}; 1 thread: ours "
               f"{statistics.median(single['ours']):,.0f}/s, naive "
               f"{statistics.median(single['naive']):,.0f}/s; {sizes.thread_rounds} rounds of "
               f"{total} calls; naive vs the target: {'PASS' if naive >= 0.85 else 'FAIL'}"),
        extra={"wall": wall, "cpu": cpu},
    )]


def measure_caller_latency_with_a_shadow(bench: Bench, sizes: Sizes) -> list[Row]:
    ld = LaunchDarkly(bench.sleeping, bench.sleeping_v2)
    lab = laboratory_experiment(bench.sleeping, bench.sleeping_v2)
    sides: dict[str, Callable[..., Any]] = {
        "legacy alone": bench.sleeping, "ours": bench.sleep, "LaunchDarkly": ld.read,
        "laboratory": lab, "one span": bench.sleep_one_span, "ours legacy": bench.sleep_legacy,
        "naive": bench.sleep_naive,
    }
    try:
        latencies = caller_latencies(sides, sizes.latency_samples)
    finally:
        ld.close()
    bench.join_shadows()
    base = percentile(latencies["legacy alone"], 50)
    p50 = {side: percentile(values, 50) for side, values in latencies.items()}
    ours = p50["ours"] / base
    base_text = f"{base * 1e3:.2f} ms (legacy alone)"

    def info(label: str, side: str) -> Row:
        return Row(label, f"{p50[side] * 1e3:.2f} ms", base_text, p50[side] / base, "info", None,
                   notes=f"+{(p50[side] - base) * 1e6:.0f} µs at p50")

    return [
        Row(
            "5. caller p50, shadow mode, both sides sleep 10 ms, vs legacy alone",
            f"{p50['ours'] * 1e3:.2f} ms", base_text, ours, "<=", 1.05,
            notes=(f"+{(p50['ours'] - base) * 1e6:.0f} µs at p50; p95 ours "
                   f"{percentile(latencies['ours'], 95) * 1e3:.2f} ms vs "
                   f"{percentile(latencies['legacy alone'], 95) * 1e3:.2f} ms; "
                   f"{sizes.latency_samples} calls per side, in interleaved blocks of 10"),
            extra={side: {"p50": p50[side], "p95": percentile(v, 95)} for side, v in latencies.items()},
        ),
        info("5b. same, LaunchDarkly Migrator.read (serial) vs legacy alone", "LaunchDarkly"),
        info("5c. same, laboratory.Experiment vs legacy alone", "laboratory"),
        info("5d. for scale: one bare SDK span (start + end) around legacy", "one span"),
        info("5e. for scale: ours in the legacy phase (no shadow)", "ours legacy"),
        info("5f. for scale: the naive instrumentation", "naive"),
    ]


def measure_hung_shadow(bench: Bench, sizes: Sizes) -> list[Row]:
    shadows = bench.registry.shadows
    shadows.join(30)
    threads_before = threading.active_count()
    peak_threads = threads_before
    peak_pending = 0

    # (a) caller latency with healthy shadows, then while every shadow hangs (legacy sleeps 10 ms;
    # simplified never returns). Two phases, because the hung shadows hold the shared workers;
    # legacy alone runs interleaved in both, so each phase has its own baseline.
    healthy = caller_latencies({"legacy alone": bench.sleeping, "ours": bench.sleep},
                         sizes.latency_samples)
    bench.join_shadows()
    latencies = caller_latencies({"legacy alone": bench.sleeping, "ours": bench.hang},
                           sizes.latency_samples)
    peak_threads = max(peak_threads, threading.active_count())
    peak_pending = max(peak_pending, shadows.pending())

    # (b) flood: far more calls than the shadow queue holds, with the workers stuck
    fast = bench.hang_fast
    started = time.process_time()
    for i in range(sizes.flood):
        fast(7)
        if i % 50 == 0:
            peak_threads = max(peak_threads, threading.active_count())
            peak_pending = max(peak_pending, shadows.pending())
    flood_us = (time.process_time() - started) / sizes.flood * 1e6
    peak_pending = max(peak_pending, shadows.pending())
    peak_threads = max(peak_threads, threading.active_count())

    # A serial peer with a shadow that takes 200 ms (a bounded stand-in for "hangs").
    def slow_new(user: int = 7) -> dict[str, Any]:
        time.sleep(0.2)
        return simplified_impl(user)

    ld = LaunchDarkly(bench.sleeping, slow_new)
    try:
        ld_latency = statistics.median(time_once(ld.read) for _ in range(3))
    finally:
        ld.close()

    bench.release.set()  # let the stuck workers go; queued shadows are past their deadline
    bench.join_shadows()
    base = percentile(latencies["legacy alone"], 50)
    vs_alone = percentile(latencies["ours"], 50) / base
    healthy_vs_alone = percentile(healthy["ours"], 50) / percentile(healthy["legacy alone"], 50)
    ours = vs_alone / healthy_vs_alone
    bounded = (peak_threads - threads_before) <= shadows.workers and peak_pending <= shadows.queue_size
    counts = dict(bench.hang_outcomes.counts)
    return [
        Row(
            "6. hung shadow: caller p50 vs the same call with a healthy shadow (legacy 10 ms)",
            f"{percentile(latencies['ours'], 50) * 1e3:.2f} ms (hung)",
            f"{percentile(healthy['ours'], 50) * 1e3:.2f} ms (healthy)", ours, "<=", 1.05,
            notes=(f"each normalised by legacy alone in its phase: hung x{vs_alone:.3f}, healthy "
                   f"x{healthy_vs_alone:.3f} ({base * 1e3:.2f} ms alone); LaunchDarkly, serial, "
                   f"with a 200 ms shadow: {ld_latency * 1e3:.0f} ms (x{ld_latency / base:.1f})"),
            extra={"ld_200ms_shadow_latency": ld_latency, "hung_vs_alone": vs_alone,
                   "healthy_vs_alone": healthy_vs_alone},
        ),
        Row(
            "6b. hung shadow: shadow work bounded (threads added, peak queued)",
            f"+{peak_threads - threads_before} threads, ≤{peak_pending} queued",
            f"limits: {shadows.workers} workers, {shadows.queue_size} queue",
            1.0 if bounded else 0.0, ">=", 1.0,
            notes=(f"{sizes.flood + sizes.latency_samples} calls with stuck workers; outcomes "
                   f"{counts}; caller {flood_us:.0f} µs CPU/call while shedding"),
            extra={"threads_before": threads_before, "peak_threads": peak_threads,
                   "peak_pending": peak_pending, "outcomes": counts},
        ),
    ]


def measure_rss_over_legacy_calls(bench: Bench | None, sizes: Sizes, *, phase: str = "legacy") -> list[Row]:
    command = [sys.executable, str(HERE / "_rss_child.py"), "--calls", str(sizes.rss_calls),
               "--warmup", str(sizes.rss_warmup), "--phase", phase]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return [Row("7. RSS growth", "error", "—", float("nan"), "<", 1.0,
                    notes=done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    growth_mib = data["growth"] / 2**20
    samples = data["samples"]
    middle = samples[len(samples) // 2 - 1][1] if len(samples) >= 2 else data["rss_warm"]
    half_1 = (middle - data["rss_warm"]) / 2**20
    half_2 = (data["rss_end"] - middle) / 2**20
    return [Row(
        f"7. RSS growth over {data['calls']:,} {phase}-phase calls after {data['warmup']:,} warm-up (MiB)",
        f"{growth_mib:+.2f} MiB", "—", growth_mib, "<", 1.0,
        notes=(f"RSS {data['rss_warm'] / 2**20:.2f} → {data['rss_end'] / 2**20:.2f} MiB "
               f"(first half {half_1:+.2f}, second half {half_2:+.2f} MiB); Python heap "
               f"{data['blocks_end'] - data['blocks_warm']:+,} allocated blocks; "
               f"{data['calls_per_second']:,.0f} calls/s ({data['seconds']:.0f} s)"),
        extra=data,
    )]


def measure_rss_over_hybrid_calls(bench: Bench | None, sizes: Sizes) -> list[Row]:
    """The same for hybrid calls (shadow + compare on every call), a tenth as many."""
    tenth = Sizes(**{**asdict(sizes), "rss_calls": max(sizes.rss_calls // 10, 1000),
                     "rss_warmup": max(sizes.rss_warmup // 4, 1000)})
    rows = measure_rss_over_legacy_calls(bench, tenth, phase="hybrid")
    rows[0].measure = rows[0].measure.replace("7.", "7b.", 1)
    return rows


def _spread(result: Any) -> str:
    return (f"ratio IQR {result.ratio_low:.2f}-{result.ratio_high:.2f}, {result.rounds} rounds x "
            f"{result.n} calls")


# The table's row ids (``--only 1,2``) -> the measure that fills them.
MEASURES: dict[str, Callable[..., list[Row]]] = {
    "1": measure_legacy_call_vs_naive_otel,
    "2": measure_hybrid_call_vs_peers,
    "3": measure_monitoring_off_vs_plain_decorator,
    "4": measure_two_threads_vs_one,
    "5": measure_caller_latency_with_a_shadow,
    "6": measure_hung_shadow,
    "7": measure_rss_over_legacy_calls,
    "7b": measure_rss_over_hybrid_calls,
}


# ---------------------------------------------------------------------------------------------


def render_text(rows: list[Row]) -> str:
    headers = ("measure", "ours", "peer", "ratio", "target", "result")
    table = [(r.measure, r.ours, r.peer, _fmt(r.figure), r.target_text, r.verdict) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    widths[0] = min(widths[0], 72)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row, r in zip(table, rows, strict=True):
        first = row[0] if len(row[0]) <= widths[0] else row[0][: widths[0] - 1] + "…"
        lines.append("  ".join(c.ljust(w) for c, w in zip((first, *row[1:]), widths, strict=True)))
        if r.notes:
            lines.append(" " * 4 + r.notes)
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    lines = ["| measure | ours | peer | ratio | target | result | notes |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.measure} | {r.ours} | {r.peer} | {_fmt(r.figure)} | {r.target_text} | "
                     f"{r.verdict} | {r.notes} |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer rounds and calls)")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,7b",
                        help="comma-separated measures to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the rows and machine info here")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--rss-calls", type=int, help="calls for measure 7 (default 1,000,000; "
                        "50,000 with --quick)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rss_calls:
        sizes = dataclasses.replace(sizes, rss_calls=args.rss_calls)
    wanted = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MEASURES]
    if unknown:
        parser.error(f"unknown measure(s) {unknown}; choose from {', '.join(MEASURES)}")

    info = machine()
    print(f"aurum-otel benchmarks ({'quick' if args.quick else 'full'} run)")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print("  " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(flush=True)

    guard = NetworkGuard().install()
    telemetry = make_telemetry()
    # The LaunchDarkly tracing hook (measure 2g) takes its tracer from the global provider, as
    # in an application; aurum-otel and the other peers are given the same provider explicitly.
    trace.set_tracer_provider(telemetry.tracer_provider)
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aurum-bench-") as tmp:
        bench = Bench(telemetry, tmp)
        try:
            for key in wanted:
                t0 = time.perf_counter()
                print(f"measure {key} ...", end=" ", flush=True)
                found = MEASURES[key](bench, sizes)
                rows.extend(found)
                print(f"{time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            bench.release.set()
            aurum_otel.reset()
            telemetry.shutdown()
    print()
    print(render_text(rows))
    print(f"\n{sum(r.verdict == 'PASS' for r in rows)} pass, {sum(r.verdict == 'FAIL' for r in rows)} "
          f"fail, {sum(r.verdict == 'info' for r in rows)} info; "
          f"{time.perf_counter() - started:.0f} s. Ratios are ours / peer "
          "(measure 4: throughput 2 threads / 1 thread; 6b: 1 = bounded; 7: MiB).")
    print(f"Outgoing connections attempted (all refused): {len(guard.attempts)}"
          + (f" {guard.attempts[:5]}" if guard.attempts else ""))
    if args.markdown:
        print()
        print(render_markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "versions": versions(), "quick": args.quick,
             "connection_attempts": guard.attempts,
             "rows": [asdict(r) | {"verdict": r.verdict} for r in rows]},
            indent=2, default=str,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())

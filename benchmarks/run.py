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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Measure 3 turns monitoring off for one migration through the environment, before aurum_otel reads
# its flags (the library itself never writes os.environ). The other migrations stay monitored.
os.environ["AURUM_MIGRATION_BENCH_OFF_MONITORING"] = "0"
os.environ.setdefault("AURUM_STATE_DIR", tempfile.mkdtemp(prefix="aurum-bench-state-"))

from _bench import Bench  # noqa: E402
from _call_cost import (  # noqa: E402
    calls,
    measure_analysis_on_the_call_path,
    measure_hybrid_call_vs_peers,
    measure_legacy_call_vs_naive_otel,
)
from _common import (  # noqa: E402
    NetworkGuard,
    caller_latencies,
    make_telemetry,
    paired,
    percentile,
    run_threads,
    simplified_impl,
    time_once,
)
from _machine import machine, versions  # noqa: E402
from _peers import LaunchDarkly, laboratory_experiment  # noqa: E402
from _table import FULL, QUICK, Row, Sizes, render_markdown, render_text, spread  # noqa: E402
from opentelemetry import trace  # noqa: E402

import aurum_otel  # noqa: E402


def measure_monitoring_off_vs_plain_decorator(bench: Bench, sizes: Sizes) -> list[Row]:
    def nothing() -> None:
        pass

    result = paired(calls(bench.off, nothing), calls(bench.passthrough, nothing), n=sizes.n_off,
                    rounds=sizes.rounds)
    return [Row(
        "3. monitoring off (AURUM_MIGRATION_<NAME>_MONITORING=0) vs functools.wraps pass-through",
        f"{result.a_us:.2f} µs", f"{result.b_us:.2f} µs (wraps)", result.ratio, "<=", 2.0,
        notes=spread(result), extra=asdict(result),
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



# The table's row ids (``--only 1,2``) -> the measure that fills them.
MEASURES: dict[str, Callable[..., list[Row]]] = {
    "1": measure_legacy_call_vs_naive_otel,
    "2": measure_hybrid_call_vs_peers,
    "2i": measure_analysis_on_the_call_path,
    "3": measure_monitoring_off_vs_plain_decorator,
    "4": measure_two_threads_vs_one,
    "5": measure_caller_latency_with_a_shadow,
    "6": measure_hung_shadow,
    "7": measure_rss_over_legacy_calls,
    "7b": measure_rss_over_hybrid_calls,
}




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer rounds and calls)")
    parser.add_argument("--only", default="1,2,2i,3,4,5,6,7,7b",
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

"""Measures 1 and 2: what one routed call costs, against naive OTel, the contract's floors,
LaunchDarkly (with and without its OpenTelemetry tracing hook) and laboratory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from _bench import Bench
from _common import (
    Telemetry,
    caller_latencies,
    legacy_impl,
    paired,
    paired_wall,
    percentile,
    simplified_impl,
)
from _peers import LaunchDarkly, LaunchDarklyTraced, laboratory_experiment
from _table import Row, Sizes, spread
from opentelemetry import context as otel_context
from opentelemetry.trace import set_span_in_context

from aurum_otel import Phase
from aurum_otel.telemetry.aggregate import Aggregator
from aurum_otel.telemetry.instruments import feature_flag_event
from aurum_otel.telemetry.sdk import add_event_at, frozen_attributes


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
        notes=spread(result) + f"; wall {result.a_wall_us:.1f} vs {result.b_wall_us:.1f} µs",
        extra=asdict(result),
    ), Row(
        "1w. the same, wall time in the caller's thread (timeit; flush outside the timed loop)",
        f"{wall.a_us:.1f} µs", f"{wall.b_us:.1f} µs (naive)", wall.ratio, "<=", 0.45,
        notes=spread(wall), extra=asdict(wall),
    ), Row(
        "1d. floor of the contract for 1: the call's span (contract attributes, current during "
        "the call) + its feature_flag.evaluation event, nothing else, vs naive OTel",
        f"{floor.a_us:.1f} µs", f"{floor.b_us:.1f} µs (naive)", floor.ratio, "info", None,
        notes=spread(floor), extra=asdict(floor),
    ), Row(
        "1e. ours (row 1) vs that floor", f"{ours_vs_floor.a_us:.1f} µs",
        f"{ours_vs_floor.b_us:.1f} µs (floor)", ours_vs_floor.ratio, "info", None,
        notes=spread(ours_vs_floor), extra=asdict(ours_vs_floor),
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
                   result.ratio, *target, notes=note + spread(result), extra=asdict(result))

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
                      + spread(wall), extra=asdict(wall)),
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
            "<=", 1.02, notes=spread(capture), extra=asdict(capture),
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


def measure_analysis_on_the_call_path(bench: Bench, sizes: Sizes) -> list[Row]:
    """What issue 16's split-integrity and paired statistics add to a hybrid call routed by
    key: the step's distinct keys (``Aggregator.record_key``) and the shadow pair's counts
    (``record_pair``); the same call with those two made no-ops is the peer. (The hashed
    ``feature_flag.context.id``, a telemetry attribute, is in both.)"""
    def after() -> None:
        bench.join_shadows()
        bench.telemetry.flush()

    ours = calls(bench.hybrid_keyed, after)

    def without_analysis(n: int) -> None:
        saved = (Aggregator.record_key, Aggregator.record_pair)
        Aggregator.record_key = Aggregator.record_pair = _nothing  # type: ignore[method-assign]
        try:
            ours(n)
        finally:
            Aggregator.record_key, Aggregator.record_pair = saved  # type: ignore[method-assign]

    # Warm: every one of the 1,000 keys seen (its digest kept, its context id hashed) first.
    result = paired(ours, without_analysis, n=sizes.n_hybrid, rounds=sizes.rounds * 2,
                    warmup=max(8, 4000 // max(sizes.n_hybrid, 1)))
    return [Row(
        "2i. split integrity and paired statistics on the call path: a hybrid call routed by key "
        "(1,000 users) vs the same with the distinct keys and pair counts made no-ops",
        f"{result.a_us:.1f} µs", f"{result.b_us:.1f} µs (no analysis)", result.ratio, "<=", 1.02,
        notes=spread(result), extra=asdict(result),
    )]


def _nothing(*args: Any) -> None:
    return None


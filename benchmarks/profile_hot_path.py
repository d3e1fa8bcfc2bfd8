"""Where a routed call's time goes: cProfile of the legacy-phase and hybrid calls, and a
component-by-component CPU breakdown of the same work timed in isolation.

    .venv/bin/python benchmarks/profile_hot_path.py [--calls 3000] [--top 25]

The hybrid profile runs each shadow inline on the calling thread (an executor whose ``offer``
runs the job at once), so one profiler sees all the work a hybrid call causes; the queue hand-off
itself is timed separately in the breakdown.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import legacy_impl, make_telemetry, simplified_impl
from opentelemetry import context, metrics, trace

import aurum_otel
from aurum_otel import FileStore, Phase, Rollout, migrated, semconv
from aurum_otel.compare import deep_compare
from aurum_otel.router import decide
from aurum_otel.shadow import Offer, ShadowExecutor, ShadowRun
from aurum_otel.shadow.executor import Job
from aurum_otel.shadow.snapshot import take, thaw
from aurum_otel.telemetry import feature_flag_event


class InlineShadows(ShadowExecutor):
    """Runs every shadow at once on the submitting thread (profiling only)."""

    def offer(self, job: Job) -> Offer:
        job.run()
        return Offer.STARTING


def per_call_us(fn: Callable[[], Any], n: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of process-CPU microseconds per call of ``fn``."""
    fn()
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - started) / n * 1e6)
    return statistics.median(samples)


def profile(label: str, fn: Callable[[], Any], calls: int, top: int, after: Callable[[], None]) -> str:
    """cProfile ``calls`` calls; each function's share of the profiled time is also scaled to the
    call's CPU cost measured without the profiler (cProfile's own overhead inflates small calls)."""
    for _ in range(200):
        fn()
    after()
    measured = per_call_us(lambda: (fn(), None)[1], max(calls // 3, 200), rounds=5)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    after()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    lines = [f"## {label}: {measured:.1f} µs CPU per call unprofiled; cProfile over {calls} calls "
             f"({total / calls * 1e6:.0f} µs/call profiled)", "",
             f"{'share':>6} {'≈µs/call':>9} {'cum share':>9} {'calls/call':>10}  function (by own time)"]
    entries = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in entries[:top]:
        lines.append(f"{tt / total:6.1%} {tt / total * measured:9.2f} {min(ct / total, 1.0):9.1%} "
                     f"{nc / calls:10.2f}  {_short(filename)}:{line}({name})")
    by_name: dict[str, float] = {}
    for (filename, _line, name), entry in raw.items():
        if "aurum_otel" in filename or name in ("deepcopy",):
            label = f"{Path(filename).stem}.{name}"
            by_name[label] = by_name.get(label, 0.0) + entry[3]
    lines += ["", "  stages (cumulative, scaled):"]
    for label in STAGES:
        if label in by_name:
            cum = min(by_name[label] / total, 1.0)
            lines.append(f"  {cum:6.1%} {cum * measured:9.2f} µs  {label}")
    return "\n".join(lines)


STAGES = (
    "migrated.call", "route.begin", "invocation.start", "invocation._snapshot_inputs",
    "snapshot.take", "telemetry.add_feature_flag_event", "invocation.succeeded",
    "invocation._end", "invocation._record", "invocation._hand_off_shadow", "executor.offer",
    "run.run", "run._open", "run._finish", "run._compare", "compare.deep_compare",
    "run._conclude",
)


def _short(filename: str) -> str:
    for marker, keep in (("site-packages/", ""), ("/aurum_otel/", "aurum_otel/"),
                         ("/benchmarks/", "benchmarks/"), ("lib/python3.", "")):
        if marker in filename:
            return keep + filename.split(marker, 1)[1]
    return filename


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--n", type=int, default=2000, help="calls per round in the breakdown")
    parser.add_argument("--skip-profile", action="store_true", help="only the breakdown")
    args = parser.parse_args()

    telemetry = make_telemetry()
    tmp = tempfile.mkdtemp(prefix="aurum-profile-")
    store = FileStore.in_dir(tmp)
    registry = aurum_otel.configure(store=store, tracer_provider=telemetry.tracer_provider,
                                    meter_provider=telemetry.meter_provider, refresh_interval=0.5)
    registry._shadows = InlineShadows()  # profiling only: shadows run inline
    store.transition("p_legacy", Phase.LEGACY, actor="bench", reason="bench")
    store.transition("p_hybrid", Phase.HYBRID, Rollout(percent=0, compare=100), actor="bench",
                     reason="bench")

    legacy_fn = migrated("p_legacy")(legacy_impl)
    legacy_fn.simplified(simplified_impl)
    hybrid_fn = migrated("p_hybrid")(legacy_impl)
    hybrid_fn.simplified(simplified_impl)

    if not args.skip_profile:
        print(profile("legacy phase", lambda: legacy_fn(7), args.calls, args.top, telemetry.flush))
        print()
        print(profile("hybrid (percent 0, compare 100), shadow inline", lambda: hybrid_fn(7),
                      args.calls, args.top, telemetry.flush))
        print()

    breakdown(telemetry, tmp, registry, legacy_fn, hybrid_fn, args.n)
    telemetry.flush()
    print(f"\nspans exported to the dropping exporter: {telemetry.span_exporter.exported}")
    aurum_otel.reset()
    telemetry.shutdown()


def breakdown(telemetry: Any, tmp: str, registry: Any, legacy_fn: Any, hybrid_fn: Any, n: int) -> None:
    """Each piece of a routed call's work timed alone. OpenTelemetry pieces use the same SDK
    providers and the same attribute sets as aurum-otel; aurum-otel's internal pieces are skipped
    (``n/a``) if its internals have changed shape."""
    tracer = telemetry.tracer_provider.get_tracer("aurum_otel")
    meter = telemetry.meter_provider.get_meter("profile.components")
    counter = meter.create_counter("profile.calls", unit="{call}")
    histogram = meter.create_histogram(
        "profile.duration", unit="s",
        explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS))
    span_attrs = {semconv.ATTR_NAME: "p_legacy", semconv.ATTR_PHASE: "legacy",
                  semconv.ATTR_IMPLEMENTATION: "legacy"}
    call_attrs = {**span_attrs, semconv.ATTR_ROLE: "authoritative", semconv.ATTR_OUTCOME: "success"}
    parent = tracer.start_span("parent")
    parent_ctx = trace.set_span_in_context(parent)
    scratch = tracer.start_span("scratch")
    value, other = legacy_impl(7), simplified_impl(7)
    executor = ShadowExecutor()

    def span_start_end() -> None:
        tracer.start_span("migrate p_legacy", attributes=span_attrs).end()

    def span_start_end_no_attrs() -> None:
        tracer.start_span("migrate p_legacy").end()

    def add_event() -> None:
        scratch.add_event(semconv.EVENT_FEATURE_FLAG, feature_flag_event("p_legacy", Phase.LEGACY))

    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.trace import Event

        frozen = BoundedAttributes(attributes=feature_flag_event("p_legacy", Phase.LEGACY),
                                   immutable=True)

        def add_prevalidated_event() -> None:
            scratch._add_event(Event(semconv.EVENT_FEATURE_FLAG, frozen))  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover
        add_prevalidated_event = None  # type: ignore[assignment]

    def set_attribute() -> None:
        scratch.set_attribute(semconv.ATTR_OUTCOME, "success")

    def attach_detach() -> None:
        context.detach(context.attach(trace.set_span_in_context(scratch)))

    def in_span(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            token = context.attach(parent_ctx)
            fn()
            context.detach(token)
        return run

    def counter_add() -> None:
        counter.add(1, call_attrs)

    def histogram_record() -> None:
        histogram.record(0.0001, call_attrs)

    def handoff_batch() -> None:
        for _ in range(100):
            executor.offer(_NoopJob())
        executor.join(10)

    rows: list[tuple[str, Callable[[], Any] | None]] = [
        ("bare legacy_impl(7)", lambda: legacy_impl(7)),
        ("ours: legacy-phase call, full telemetry", lambda: legacy_fn(7)),
        ("ours: hybrid call, shadow inline (all the work it causes)", lambda: hybrid_fn(7)),
        ("OpenTelemetry SDK, per operation:", None),
        ("  tracer.start_span(3 attributes) + end()", span_start_end),
        ("  tracer.start_span() + end(), no attributes", span_start_end_no_attrs),
        ("  span.add_event(feature_flag.evaluation, 3 attributes)", add_event),
        ("  span._add_event(Event, shared pre-validated attributes)", add_prevalidated_event),
        ("  span.set_attribute (one)", set_attribute),
        ("  context.attach(set_span_in_context) + detach", attach_detach),
        ("  counter.add, sampled span in context (exemplar offered)", in_span(counter_add)),
        ("  counter.add, no span in context", counter_add),
        ("  histogram.record, sampled span in context (exemplar offered)", in_span(histogram_record)),
        ("  histogram.record, no span in context", histogram_record),
        ("shadow-side pieces:", None),
        ("  copy.deepcopy(((7,), {})) (arguments)", lambda: copy.deepcopy(((7,), {}))),
        ("  copy.deepcopy(result)", lambda: copy.deepcopy(value)),
        ("  snapshot of the result (pickle) + thaw, as aurum-otel takes it",
         lambda: thaw(take(value)[1])),
        ("  deep_compare(result, result')", lambda: deep_compare(value, other)),
        ("  result == result' (for scale)", lambda: value == other),
    ]
    rows += _internal_rows(registry, legacy_fn, hybrid_fn, value, parent)
    noop, noop_hybrid = _noop_providers(tmp)
    rows.append(("ours: legacy-phase call on no-op providers (aurum-otel's own work)",
                 lambda: noop(7)))
    rows.append(("ours: hybrid call on no-op providers, shadow inline (aurum-otel's own work)",
                 lambda: noop_hybrid(7)))
    rows.append(("ShadowExecutor.offer + a worker runs a no-op + join, per 100 jobs", handoff_batch))
    # Rows are timed round-robin (every row once per round, 7 rounds), so a change in the machine's
    # load during the breakdown moves every row alike.
    timed = [(label, fn) for label, fn in rows if fn is not None]
    samples: dict[str, list[float]] = {label: [] for label, _ in timed}
    failed: dict[str, str] = {}
    for _ in range(7):
        for label, fn in timed:
            if label in failed:
                continue
            count = max(n // 100, 5) if fn is handoff_batch else n
            try:
                samples[label].append(per_call_us(fn, count, rounds=1))
            except (AttributeError, TypeError) as exc:
                failed[label] = f"{type(exc).__name__}: {exc}"
    print(f"## breakdown: process-CPU µs per operation, median of 7 round-robin rounds x {n}")
    print()
    for label, fn in rows:
        if fn is None:
            print(f"{'':9}  {label}")
        elif label in failed:
            print(f"{'n/a':>9}  {label} ({failed[label]})")
        else:
            print(f"{statistics.median(samples[label]):9.2f}  {label}")
    executor.shutdown()
    scratch.end()
    parent.end()


def _internal_rows(registry: Any, legacy_fn: Any, hybrid_fn: Any, value: Any,
                   parent: Any) -> list[tuple[str, Callable[[], Any] | None]]:
    try:
        router = legacy_fn._self_router
        router.bind()
        runtime = router.runtime
        state = runtime.resolved().state
        hybrid_router = hybrid_fn._self_router
        hybrid_router.bind()
        decision = decide(hybrid_router.runtime.resolved().state, name="p_hybrid", key=None,
                          rand=registry.rand)
    except (AttributeError, TypeError) as exc:
        return [(f"aurum-otel internals: n/a ({exc})", None)]

    def shadow_job() -> None:
        ShadowRun(hybrid_router, decision, simplified_impl, simplified_impl,
                  (None, (7,), {}), value, None, parent).run()

    return [
        ("aurum-otel's own pieces:", None),
        ("  Router.begin (resolve + decide + Invocation)",
         lambda: router.begin(legacy_impl, None, (7,), {})),
        ("  MigrationRuntime.resolved()", runtime.resolved),
        ("  router.decide()", lambda: decide(state, name="p_legacy", key=None, rand=registry.rand)),
        ("  ShadowRun(...).run() (shadow span, record, compare)", shadow_job),
    ]


class _NoopJob:
    """The smallest job the executor takes."""

    deadline = float("inf")
    size = 0

    def run(self) -> None:
        pass

    def expire(self) -> None:
        pass

    def cancel(self, reason: str) -> None:
        pass


def _noop_providers(tmp: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A legacy-phase and a hybrid migration on no-op providers: aurum-otel's own work."""
    store = FileStore.in_dir(tmp)
    found = []
    for name, phase, rollout in (("p_noop", Phase.LEGACY, None),
                                 ("p_noop_hybrid", Phase.HYBRID, Rollout(percent=0, compare=100))):
        fn = migrated(name, tracer_provider=trace.NoOpTracerProvider(),
                      meter_provider=metrics.NoOpMeterProvider())(legacy_impl)
        fn.simplified(simplified_impl)
        if rollout is None:
            store.transition(name, phase, actor="bench", reason="bench")
        else:
            store.transition(name, phase, rollout, actor="bench", reason="bench")
        found.append(fn)
    return found[0], found[1]


if __name__ == "__main__":
    main()

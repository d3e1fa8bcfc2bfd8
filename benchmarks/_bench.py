"""The migrations under test, configured once on shared offline providers: ``Bench``.

Import it after ``run.py`` has set the environment that measure 3 needs (aurum-otel reads its
flags when first used).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from _common import Telemetry, legacy_impl, make_telemetry, simplified_impl
from _peers import naive_instrumented, passthrough
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

import aurum_otel
from aurum_otel import BaseHooks, FileStore, MismatchReport, Phase, Rollout, migrated

SLEEP = 0.010  # measures 5 and 6: each implementation sleeps 10 ms


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
        store.transition("bench_hybrid_keyed", Phase.HYBRID, Rollout(percent=10, compare=100),
                         actor="bench", reason="bench")
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
        # Routed by key, 1,000 users in turn (sticky traffic): the split's distinct keys and the
        # hashed context id.
        users = itertools.count()
        self.hybrid_keyed = define("bench_hybrid_keyed", legacy_impl, simplified_impl,
                                   key=lambda user=7: next(users) % 1000)
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

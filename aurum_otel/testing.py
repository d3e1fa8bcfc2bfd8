"""Helpers for testing code that uses aurum-otel (and aurum-otel itself).

``reset()`` forgets all process-wide state; :class:`CapturedTelemetry` wires the OpenTelemetry SDK's
in-memory span exporter and metric reader into aurum-otel's registry::

    from aurum_otel import testing

    def test_routes(tmp_path):
        with testing.capture(state_dir=tmp_path) as telemetry:
            load_settings()
        assert telemetry.spans()[0].attributes["aurum.migration.phase"] == "legacy"

In hybrid, a shadow worker usually closes the call's span before it runs the shadow, so read spans
and counts after ``telemetry.wait_for_shadows()`` (leaving the ``with`` block does it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aurum_otel.forensics import capture as forensics_capture
from aurum_otel.health.file import split_from_steps
from aurum_otel.health.inprocess import HealthReader
from aurum_otel.registry import Registry, configure, get_registry
from aurum_otel.registry import reset as _reset_registry
from aurum_otel.store import FileStore, PhaseStore
from aurum_otel.telemetry import Aggregator, semconv


def reset() -> None:
    """Forget all process-wide state: cached phases, the store, the providers, the shadow
    workers, the instruments and their counts, readers, metrics-file writers, the mismatch log,
    and captured mismatch examples not yet stored."""
    _reset_registry()
    forensics_capture.reset()


class CapturedTelemetry:
    """In-memory spans and metric points of everything aurum-otel emits inside the block."""

    def __init__(
        self,
        *,
        state_dir: Path | str | None = None,
        store: PhaseStore | None = None,
        clock: Callable[[], float] | None = None,
        rand: Callable[[], float] | None = None,
        refresh_interval: float = 0.0,
    ) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        split_of = split_from_steps(lambda name: get_registry().step_of(name))
        if clock is None:
            self.health = HealthReader(self._aggregator, split_of=split_of)
        else:
            # Steps start in wall time (the store's), which an injected clock does not follow:
            # the reader bounds the split's window by the step changes it sees instead.
            self.health = HealthReader(self._aggregator, clock=clock, split_of=split_of,
                                       wall=None)
        if store is None and state_dir is not None:
            store = FileStore.in_dir(state_dir)
        options: dict[str, Any] = {
            "store": store,
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "refresh_interval": refresh_interval,
            "health_reader": self.health,
        }
        if clock is not None:
            options["clock"] = clock
        if rand is not None:
            options["rand"] = rand
        self._options = options
        self.registry: Registry | None = None

    def __enter__(self) -> CapturedTelemetry:
        self.registry = configure(**self._options)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wait_for_shadows()
        reset()

    def _aggregator(self) -> Aggregator:
        return (self.registry or get_registry()).instruments().aggregator

    def wait_for_shadows(self, timeout: float = 10.0) -> None:
        """Block until every shadow submitted so far has been compared and recorded."""
        registry = self.registry or get_registry()
        registry.shadows.join(timeout)
        deadline = time.monotonic() + timeout
        while registry.shadows.pending() and time.monotonic() < deadline:
            time.sleep(0.005)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def points(self, metric: str) -> list[tuple[Mapping[str, Any], Any]]:
        """``(attributes, point)`` for every point of ``metric`` collected now."""
        data = self.reader.get_metrics_data()
        found: list[tuple[Mapping[str, Any], Any]] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for item in scope_metrics.metrics:
                    if item.name == metric:
                        found.extend((dict(p.attributes or {}), p) for p in item.data.data_points)
        return found

    def durations(self, **match: str) -> int:
        """How many runs were timed (the in-process duration buckets), filtered like counts."""
        wanted = {_long(key): value for key, value in match.items()}
        instruments = (self.registry or get_registry()).instruments()
        total = 0
        for key, figures in instruments.aggregator.calls().items():
            attrs = instruments.call_attributes(*key)
            if all(attrs.get(k) == v for k, v in wanted.items()):
                total += sum(figures.buckets)
        return total

    def counts(self, metric: str, **match: str) -> float:
        """The sum of ``metric``'s counter points whose attributes include ``match``.

        Keys may be written short (``implementation="legacy"`` for
        ``aurum.migration.implementation``).
        """
        wanted = {_long(key): value for key, value in match.items()}
        total = 0.0
        for attrs, point in self.points(metric):
            if all(attrs.get(key) == value for key, value in wanted.items()):
                total += point.value if hasattr(point, "value") else point.count
        return total


def _long(key: str) -> str:
    return key if "." in key else f"{semconv.ATTR_PREFIX}{key}"


def capture(**options: Any) -> CapturedTelemetry:
    """Shorthand for :class:`CapturedTelemetry` (a context manager)."""
    return CapturedTelemetry(**options)

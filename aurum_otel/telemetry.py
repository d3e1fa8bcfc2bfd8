"""OpenTelemetry plumbing: instruments created once, attribute sets built once, SDK setup."""

from __future__ import annotations

import atexit
import copy
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import TracerProvider

from aurum_otel import semconv
from aurum_otel.aggregate import Aggregator
from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, Role
from aurum_otel.telemetry_exit import (
    DEFAULT_EXIT_BUDGET,
    EXIT_BUDGET_VARIABLE,
    TelemetryHandle,
    resolve_exit_budget,
)

__all__ = ["DEFAULT_EXIT_BUDGET", "EXIT_BUDGET_VARIABLE", "Instruments", "TelemetryHandle",
           "instruments_for", "resolve_exit_budget", "setup_telemetry"]

VERSION = "0.1.0"
Attributes = Mapping[str, str]


_ORDINARY_SOURCES = frozenset({"store", "default"})


class Instruments:
    """The tracer, the metric instruments and cached attribute sets for one provider pair.

    Call and comparison counts go to a lock-free per-thread :class:`Aggregator`; OpenTelemetry
    reads them through observable counters at collection time, so a routed call never takes
    the SDK's per-instrument locks. Latency histograms come from the spans (the collector's
    ``span_metrics`` connector) and, in process, from the aggregator's buckets.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.aggregator = Aggregator()
        self.tracer = trace.get_tracer(
            semconv.INSTRUMENTATION_SCOPE, VERSION, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(
            semconv.INSTRUMENTATION_SCOPE, VERSION, meter_provider=meter_provider
        )
        self.calls = meter.create_observable_counter(
            semconv.METRIC_CALLS,
            callbacks=[self._observe_calls],
            unit="{call}",
            description="Calls routed by aurum-otel, per implementation, role and outcome.",
        )
        self.comparisons = meter.create_observable_counter(
            semconv.METRIC_COMPARISONS,
            callbacks=[self._observe_comparisons],
            unit="{comparison}",
            description="Shadow comparisons, by result.",
        )
        self.transitions = meter.create_counter(
            semconv.METRIC_TRANSITIONS,
            unit="{transition}",
            description="Phase transitions, by from, to and reason.",
        )
        self._lock = threading.Lock()
        self._span_attrs: dict[tuple[Any, ...], Attributes] = {}
        self._event_attrs: dict[tuple[str, Phase], Any] = {}
        self._call_attrs: dict[tuple[str, Phase, Implementation, Role, Outcome], Attributes] = {}
        self._comparison_attrs: dict[tuple[str, Phase, Comparison], Attributes] = {}

    def with_tracer(self, tracer_provider: TracerProvider | None) -> Instruments:
        """The same meters and aggregator, tracing to another provider."""
        clone = copy.copy(self)
        clone.tracer = trace.get_tracer(
            semconv.INSTRUMENTATION_SCOPE, VERSION, tracer_provider=tracer_provider
        )
        return clone

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        for key, totals in self.aggregator.calls().items():
            yield Observation(totals.count, self.call_attributes(*key))

    def _observe_comparisons(self, options: CallbackOptions) -> Iterable[Observation]:
        for key, count in self.aggregator.comparisons().items():
            yield Observation(count, self.comparison_attributes(*key))

    def span_attributes(self, name: str, phase: Phase, implementation: Implementation,
                        source: str | None = None, *, outcome: bool = True) -> Attributes:
        key = (name, phase, implementation, source, outcome)
        attrs = self._span_attrs.get(key)
        if attrs is None:
            attrs = {
                semconv.ATTR_NAME: name,
                semconv.ATTR_PHASE: phase.value,
                semconv.ATTR_IMPLEMENTATION: implementation.value,
            }
            if outcome:  # the usual outcome, set up front: only an error or a fallback changes it
                attrs[semconv.ATTR_OUTCOME] = Outcome.SUCCESS.value
            # Each attribute is validated by the SDK on every span: the usual sources (the
            # store, the default) go unsaid; the ones an operator must notice are tagged.
            if source is not None and source not in _ORDINARY_SOURCES:
                attrs[semconv.ATTR_PHASE_SOURCE] = source
            with self._lock:
                self._span_attrs[key] = attrs
        return attrs

    def shadow_attributes(self, name: str, phase: Phase, implementation: Implementation
                          ) -> Attributes:
        key = (name, phase, implementation, "shadow")
        attrs = self._span_attrs.get(key)
        if attrs is None:
            attrs = {**self.span_attributes(name, phase, implementation, outcome=False),
                     semconv.ATTR_ROLE: Role.SHADOW.value}
            with self._lock:
                self._span_attrs[key] = attrs
        return attrs

    def add_feature_flag_event(self, span: Any, name: str, phase: Phase,
                               timestamp: int | None = None) -> None:
        """Add the ``feature_flag.evaluation`` event (OTel feature-flag conventions).

        On the SDK's spans the event's attributes are validated once per (name, phase) and
        shared, instead of on every call; other spans get a plain ``add_event``.
        """
        key = (name, phase)
        attributes = self._event_attrs.get(key)
        if attributes is None:
            attributes = _frozen_attributes(feature_flag_event(name, phase))
            with self._lock:
                self._event_attrs[key] = attributes
        add = getattr(span, "_add_event", None)
        if add is not None and _SdkEvent is not None:
            add(_SdkEvent(semconv.EVENT_FEATURE_FLAG, attributes, timestamp))
        else:
            span.add_event(semconv.EVENT_FEATURE_FLAG, feature_flag_event(name, phase),
                           timestamp)

    def call_attributes(
        self, name: str, phase: Phase, implementation: Implementation, role: Role, outcome: Outcome
    ) -> Attributes:
        key = (name, phase, implementation, role, outcome)
        attrs = self._call_attrs.get(key)
        if attrs is None:
            attrs = {
                semconv.ATTR_NAME: name,
                semconv.ATTR_PHASE: phase.value,
                semconv.ATTR_IMPLEMENTATION: implementation.value,
                semconv.ATTR_ROLE: role.value,
                semconv.ATTR_OUTCOME: outcome.value,
            }
            with self._lock:
                self._call_attrs[key] = attrs
        return attrs

    def comparison_attributes(self, name: str, phase: Phase, result: Comparison) -> Attributes:
        key = (name, phase, result)
        attrs = self._comparison_attrs.get(key)
        if attrs is None:
            attrs = {
                semconv.ATTR_NAME: name,
                semconv.ATTR_PHASE: phase.value,
                semconv.ATTR_COMPARISON: result.value,
            }
            with self._lock:
                self._comparison_attrs[key] = attrs
        return attrs

    def record_call(
        self,
        name: str,
        phase: Phase,
        implementation: Implementation,
        role: Role,
        outcome: Outcome,
        seconds: float,
    ) -> None:
        self.aggregator.record_call((name, phase, implementation, role, outcome), seconds)

    def record_comparison(self, name: str, phase: Phase, result: Comparison) -> None:
        self.aggregator.record_comparison((name, phase, result))


try:  # the SDK's event type, to add a pre-validated event (see add_feature_flag_event)
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.trace import Event as _SdkEvent
except ImportError:  # the API alone: plain add_event
    _SdkEvent = None  # type: ignore[assignment, misc]


def _frozen_attributes(attributes: Mapping[str, str]) -> Any:
    if _SdkEvent is None:
        return attributes
    return _BoundedAttributes(attributes=attributes, immutable=True)


_instruments_lock = threading.Lock()
_instruments: weakref.WeakKeyDictionary[Any, dict[Any, Instruments]] = weakref.WeakKeyDictionary()


def instruments_for(tracer_provider: Any = None, meter_provider: Any = None) -> Instruments:
    """The one :class:`Instruments` of a provider pair (``None``: the global providers).

    One per meter provider for the life of the provider: its observable counters are registered
    once and keep reading the same cumulative aggregator.
    """
    # ``None`` is its own key (the global providers, through OpenTelemetry's proxies), so code
    # that ran before setup_telemetry() and code after it share one aggregator.
    meter_key = meter_provider if meter_provider is not None else _GLOBAL
    tracer_key = tracer_provider if tracer_provider is not None else _GLOBAL
    created = False
    with _instruments_lock:
        per_tracer = _instruments.setdefault(meter_key, {})
        found = per_tracer.get(tracer_key)
        if found is None:
            shared = next(iter(per_tracer.values()), None)
            created = shared is None
            found = Instruments(tracer_provider, meter_provider) if shared is None else (
                shared.with_tracer(tracer_provider)
            )
            per_tracer[tracer_key] = found
    if created and monitoring_explicitly_on():
        from aurum_otel.metrics_file import writer_for

        writer_for(found.aggregator, start=True)
    return found


MONITORING_VARIABLE = "AURUM_ENABLE_MIGRATION_MONITORING"
_TRUE = frozenset({"1", "true", "yes", "on"})


def monitoring_explicitly_on() -> bool:
    """``AURUM_ENABLE_MIGRATION_MONITORING`` is set, and to a true value (the guide's step)."""
    return os.environ.get(MONITORING_VARIABLE, "").strip().lower() in _TRUE


class _Global:
    """The key of the global providers (weak-referenceable, never collected)."""


_GLOBAL = _Global()


def feature_flag_event(name: str, phase: Phase) -> dict[str, str]:
    """The ``feature_flag.evaluation`` event attributes (OTel feature-flag conventions)."""
    return {
        semconv.ATTR_FF_KEY: semconv.FF_KEY.format(name=name),
        semconv.ATTR_FF_VARIANT: phase.value,
        semconv.ATTR_FF_PROVIDER: semconv.FF_PROVIDER,
    }


def setup_telemetry(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    export_interval_millis: int | None = None,
    extra_readers: Sequence[Any] = (),
    set_global: bool = True,
    health: bool = True,
    metrics_file: bool = True,
    metrics_file_path: Any = None,
    otlp: bool = True,
    exit_budget: float | None = None,
) -> TelemetryHandle:
    """Configure the OpenTelemetry SDK to export spans and metrics over OTLP.

    Reads the standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``grpc`` or ``http/protobuf``, ``OTEL_SERVICE_NAME``,
    ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_RESOURCE_ATTRIBUTES``). Exports are batched in the
    background, so an unreachable collector never blocks or fails a call.

    Args:
        service_name: ``service.name``; default ``OTEL_SERVICE_NAME`` or ``aurum``.
        endpoint: overrides ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        export_interval_millis: metric export interval; default ``OTEL_METRIC_EXPORT_INTERVAL``
            or 10 s.
        extra_readers: more metric readers, e.g. aurum-otel's in-process health reader.
        set_global: also install the providers as the OpenTelemetry globals.
        health: attach a :class:`~aurum_otel.health.HealthReader` for in-process health and
            register it, so ``validate_migration_health()`` and the controller use it.
        metrics_file: also keep ``~/.aurum/migration_metrics.json`` (the migration guide's file).
        metrics_file_path: where that file is (default ``$AURUM_STATE_DIR``).
        otlp: export over OTLP; ``False`` keeps only the in-process readers (the demo without a
            collector).
        exit_budget: the most seconds shutdown may take in all (at exit or ``shutdown()``),
            however slow the collector; default ``AURUM_EXIT_BUDGET`` or 3. Each export is also
            bounded by it.

    Raises:
        ConfigurationError: an unknown ``OTEL_EXPORTER_OTLP_PROTOCOL`` or a bad exit budget.
    """
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    budget = resolve_exit_budget(exit_budget)
    export_timeout = max(min(budget, 10.0), 0.1)
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip().lower()
    span_exporter: Any = None
    metric_exporter: Any = None
    if not otlp:
        pass
    elif protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=endpoint, insecure=_insecure(endpoint),
                                         timeout=export_timeout)
        metric_exporter = OTLPMetricExporter(endpoint=endpoint, insecure=_insecure(endpoint),
                                             timeout=export_timeout)
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        base = endpoint.rstrip("/") if endpoint else None
        span_exporter = HttpSpanExporter(endpoint=f"{base}/v1/traces" if base else None,
                                         timeout=export_timeout)
        metric_exporter = HttpMetricExporter(endpoint=f"{base}/v1/metrics" if base else None,
                                             timeout=export_timeout)
    else:
        from aurum_otel.errors import ConfigurationError

        raise ConfigurationError("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, ["grpc", "http/protobuf"])

    resource = Resource.create(
        {"service.name": service_name or os.environ.get("OTEL_SERVICE_NAME") or "aurum"}
    )
    # The SDK's own exit hooks wait up to 30 s each on an unreachable collector; the handle's
    # hook bounds them all by the exit budget instead.
    tracer_provider = SdkTracerProvider(resource=resource, shutdown_on_exit=False)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    interval = export_interval_millis or int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "10000"))
    readers: list[Any] = [*extra_readers]
    if metric_exporter is not None:
        readers.insert(0, PeriodicExportingMetricReader(metric_exporter,
                                                        export_interval_millis=interval))
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=readers,
                                      shutdown_on_exit=False)
    health_reader = None
    if health:
        from aurum_otel.health.inprocess import HealthReader
        from aurum_otel.registry import get_registry

        health_reader = HealthReader(
            None if set_global else instruments_for(tracer_provider, meter_provider).aggregator)
        if set_global:
            get_registry().health_reader = health_reader
    writer = None
    if metrics_file:
        aggregator = instruments_for(None if set_global else tracer_provider,
                                     None if set_global else meter_provider).aggregator
        from aurum_otel.metrics_file import writer_for

        writer = writer_for(aggregator, start=True)
        assert writer is not None  # start=True always gives one
        writer.retarget(metrics_file_path, interval=min(interval / 1000, 5.0))
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    handle = TelemetryHandle(tracer_provider, meter_provider, tuple(readers), health_reader,
                             writer, budget)
    atexit.register(handle.shutdown)
    return handle


def _insecure(endpoint: str | None) -> bool | None:
    target = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if target.startswith("http://"):
        return True
    return None

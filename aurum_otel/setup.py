"""The top floor: ``setup_telemetry()`` configures the SDK, its exporters and aurum-otel's readers.

It wires what the registry owns (the in-process health reader, the metrics-file writer) to the
providers it makes, and bounds shutdown by an exit budget: however slow the collector, exit stays
prompt. The SDK and the OTLP exporters are imported inside :func:`setup_telemetry`, lazily: they
are optional (the library itself needs only ``opentelemetry-api``).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

from aurum_otel.errors import ConfigurationError
from aurum_otel.health.file import split_from_steps
from aurum_otel.health.inprocess import HealthReader
from aurum_otel.registry import current_aggregator, get_registry

__all__ = ["DEFAULT_EXIT_BUDGET", "EXIT_BUDGET_VARIABLE", "TelemetryHandle", "resolve_exit_budget",
           "setup_telemetry"]

EXIT_BUDGET_VARIABLE = "AURUM_EXIT_BUDGET"
DEFAULT_EXIT_BUDGET = 3.0

logger = logging.getLogger("aurum_otel.telemetry")


def resolve_exit_budget(value: float | None) -> float:
    """The total seconds shutdown may take: ``value``, else ``AURUM_EXIT_BUDGET``, else 3.

    Raises:
        ConfigurationError: the budget is not a finite number of seconds >= 0.
    """
    name, raw = ("exit_budget", value) if value is not None else (
        EXIT_BUDGET_VARIABLE, os.environ.get(EXIT_BUDGET_VARIABLE))
    if raw is None or raw == "":
        return DEFAULT_EXIT_BUDGET
    try:
        budget = float(raw)
    except (TypeError, ValueError):
        budget = math.nan
    if isinstance(raw, bool) or not math.isfinite(budget) or budget < 0:
        raise ConfigurationError(name, raw, "a finite number of seconds >= 0, e.g. 3")
    return budget


@dataclass
class TelemetryHandle:
    """What :func:`setup_telemetry` configured; ``shutdown()`` flushes and stops the exporters.

    Shutdown (``shutdown()``, and the interpreter's exit) takes at most ``exit_budget`` seconds in
    all, however slow or unreachable the collector is: what is not exported by then is dropped,
    and a warning says so.
    """

    tracer_provider: Any
    meter_provider: Any
    readers: Sequence[Any] = field(default_factory=tuple)
    health_reader: Any = None
    metrics_file: Any = None
    exit_budget: float = DEFAULT_EXIT_BUDGET
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def force_flush(self, timeout_millis: int = 5_000) -> None:
        self.tracer_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)
        if self.metrics_file is not None:
            self.metrics_file.flush()

    def shutdown(self) -> bool:
        """Flush and stop within the exit budget; ``False`` when it ran out (data dropped)."""
        if self._done.is_set():
            return True
        self._done.set()
        atexit.unregister(self.shutdown)
        deadline = time.monotonic() + self.exit_budget
        steps: list[tuple[str, Any]] = []
        if self.metrics_file is not None:
            steps.append(("metrics file", self.metrics_file.stop))
        steps.append(("traces", self.tracer_provider.shutdown))
        steps.append(("metrics", lambda: self.meter_provider.shutdown(
            timeout_millis=max(deadline - time.monotonic(), 0.0) * 1000)))
        for what, step in steps:
            # Each step runs on a daemon thread: a hung exporter is abandoned at the deadline
            # instead of holding the process's exit.
            worker = threading.Thread(target=_quietly, args=(what, step), daemon=True,
                                      name=f"aurum-shutdown-{what}")
            worker.start()
            worker.join(max(deadline - time.monotonic(), 0.0))
            if worker.is_alive():
                logger.warning("telemetry shutdown: %s not flushed within the exit budget of "
                               "%g s (%s); what was not exported is dropped", what,
                               self.exit_budget, EXIT_BUDGET_VARIABLE)
                return False
        return True


def _quietly(what: str, step: Any) -> None:
    try:
        step()
    except Exception as exc:  # shutdown must not raise into the exit path
        logger.warning("telemetry shutdown: %s failed: %s", what, exc)


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
    registry = get_registry()
    health_reader = None
    if health:
        # On the global providers the reader follows the registry of the moment (its aggregator).
        health_reader = HealthReader(
            current_aggregator if set_global else registry.instruments_of(
                tracer_provider, meter_provider).aggregator,
            split_of=split_from_steps(_current_step))  # the split rule knows what was configured
        if set_global:
            registry.health_reader = health_reader
    writer = None
    if metrics_file:
        aggregator = registry.instruments_of(None if set_global else tracer_provider,
                                             None if set_global else meter_provider).aggregator
        writer = registry.metrics_writer(aggregator, start=True)
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


def _current_step(name: str) -> tuple[str, float] | None:
    """The step of ``name`` in the registry of the moment (``configure()`` may replace it)."""
    return get_registry().step_of(name)

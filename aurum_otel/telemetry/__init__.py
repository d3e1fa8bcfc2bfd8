"""Telemetry below the registry: the contract's names, the hot path's instruments, the counts.

- :mod:`~aurum_otel.telemetry.semconv`: every span, attribute and metric name (the contract);
- :mod:`~aurum_otel.telemetry.aggregate`: per-thread, lock-free call and comparison counts;
- :mod:`~aurum_otel.telemetry.instruments`: tracer, counters and attribute sets, built once;
- :mod:`~aurum_otel.telemetry.sdk`: the only use of the SDK's private span API.

The SDK bootstrap (exporters, readers, the exit budget) is :mod:`aurum_otel.setup`, the top floor.
"""

from aurum_otel.telemetry.aggregate import Aggregator
from aurum_otel.telemetry.instruments import (
    Attributes,
    Instruments,
    InstrumentSet,
    feature_flag_event,
    monitoring_explicitly_on,
)

__all__ = ["Aggregator", "Attributes", "InstrumentSet", "Instruments", "feature_flag_event",
           "monitoring_explicitly_on"]

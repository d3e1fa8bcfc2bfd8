"""The meter side of the instruments: one set of counters and gauges per meter provider.

The SDK keeps one instrument per name per meter provider, so the observable counters are made
once per provider (:func:`meters_of`) and read the provider's latest
:class:`~aurum_otel.telemetry.instruments.Instruments` (its :attr:`Meters.source`) when
OpenTelemetry collects.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from aurum_otel.telemetry import semconv

__all__ = ["UNLINKED", "Meters", "meters_of"]

VERSION = "0.1.0"
# An observation without a context is linked by the SDK to the collecting thread's current span,
# which has nothing to do with the counts: this one (not empty, never sampled) links nothing.
UNLINKED = trace.set_span_in_context(trace.INVALID_SPAN)


class Meters:
    """One meter provider's counters, created once for the provider's life.

    The SDK keeps one instrument per name per meter provider: asking again for an observable
    counter of the same name returns the first one, with its first callbacks. So the counters
    are made once per provider, and their callbacks read :attr:`source`, the provider's latest
    :class:`Instruments` (whose aggregator the registry of the moment owns).
    """

    def __init__(self, meter_provider: MeterProvider | None) -> None:
        self.source: Any = None  # the provider's latest Instruments
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
        self.rollout_percent = meter.create_observable_gauge(
            semconv.METRIC_ROLLOUT_PERCENT,
            callbacks=[self._observe_rollouts],
            description="Configured share (0-100) of authoritative calls served by simplified.",
        )
        self.transitions = meter.create_counter(
            semconv.METRIC_TRANSITIONS,
            unit="{transition}",
            description="Phase transitions, by from, to and reason.",
        )

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        if source is not None:
            for key, totals in source.aggregator.calls().items():
                yield Observation(totals.count, source.call_attributes(*key), context=UNLINKED)

    def _observe_comparisons(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        if source is not None:
            for key, count in source.aggregator.comparisons().items():
                yield Observation(count, source.comparison_attributes(*key),
                                  context=source.exemplar_context(key))


    def _observe_rollouts(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        rollouts = source.rollouts if source is not None else None
        if rollouts is None:
            return
        try:
            percents = dict(rollouts())
        except Exception:  # a store gone bad is the health source's news, never a collection's
            return
        for name, percent in percents.items():
            yield Observation(percent, {semconv.ATTR_NAME: name}, context=UNLINKED)


class _Global:
    """The key of the global providers (weak-referenceable, never collected)."""


_GLOBAL = _Global()
# Mirrors the SDK's own per-provider instrument table (see Meters); holds no counts.
_meters_lock = threading.Lock()
_meters: weakref.WeakKeyDictionary[Any, Meters] = weakref.WeakKeyDictionary()


def meters_of(meter_provider: MeterProvider | None) -> Meters:
    # ``None`` is its own key (the global providers, through OpenTelemetry's proxies), so code
    # that ran before setup_telemetry() and code after it share one set of counters.
    key = meter_provider if meter_provider is not None else _GLOBAL
    with _meters_lock:
        found = _meters.get(key)
        if found is None:
            found = _meters[key] = Meters(meter_provider)
        return found



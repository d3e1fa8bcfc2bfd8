"""The meter side of the instruments: one set of counters and gauges per meter provider.

The SDK keeps one instrument per name per meter provider, so the observable counters are made
once per provider (:func:`meters_of`) and read the provider's latest
:class:`~aurum_otel.telemetry.instruments.Instruments` (its :attr:`Meters.source`) when
OpenTelemetry collects.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from aurum_otel.telemetry import semconv
from aurum_otel.telemetry.aggregate import RATIO_BOUNDS, PairKey

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
        self.routing_keys = meter.create_observable_gauge(
            semconv.METRIC_ROUTING_KEYS,
            callbacks=[self._observe_routing_keys],
            unit="{key}",
            description="Distinct routing keys routed to each implementation in the current step.",
        )
        self.pairs = meter.create_observable_counter(
            semconv.METRIC_PAIRS,
            callbacks=[self._observe_pairs],
            unit="{pair}",
            description="Shadowed calls whose two sides finished, by which side failed and which "
                        "side was slower.",
        )
        self.pair_ratios = meter.create_observable_counter(
            semconv.METRIC_PAIR_RATIOS,
            callbacks=[self._observe_pair_ratios],
            unit="{pair}",
            description="Shadow pairs whose simplified/legacy duration ratio is at most le "
                        "(cumulative buckets: histogram_quantile reads them).",
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


    def _observe_routing_keys(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        if source is not None:
            for name, keys in source.aggregator.routing_keys().items():
                for implementation, count in (("legacy", keys.legacy),
                                              ("simplified", keys.simplified)):
                    yield Observation(count, {semconv.ATTR_NAME: name,
                                              semconv.ATTR_IMPLEMENTATION: implementation},
                                      context=UNLINKED)

    def _observe_pairs(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        if source is not None:
            for (name, failed, slower), count in pair_counts(source.aggregator.pairs()).items():
                yield Observation(count, _pair_attributes(name, failed, slower), context=UNLINKED)

    def _observe_pair_ratios(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.source
        if source is not None:
            for name, cumulative in ratio_buckets(source.aggregator.pairs()).items():
                for le, count in zip(RATIO_LABELS, cumulative, strict=True):
                    yield Observation(count, _ratio_attributes(name, le), context=UNLINKED)


FAILED = ("none", "legacy", "simplified", "both")  # by (legacy failed, simplified failed)
SLOWER = {1: "simplified", -1: "legacy", 0: "tie"}  # by the pair's order
# Bucket bounds as Prometheus prints them, so histogram_quantile and a person read them alike.
RATIO_LABELS = (*(f"{bound:g}" for bound in RATIO_BOUNDS), "+Inf")


def pair_counts(pairs: Mapping[PairKey, int]) -> dict[tuple[str, str, str], int]:
    """``(name, failed, slower) -> count``, every combination of a migration that has pairs (0
    where none happened: a series must exist before its first pair for PromQL to count it)."""
    out: dict[tuple[str, str, str], int] = {}
    for (name, legacy_failed, simplified_failed, order, _bucket), count in pairs.items():
        if (name, FAILED[0], SLOWER[0]) not in out:
            out.update(dict.fromkeys(((name, f, s) for f in FAILED for s in SLOWER.values()), 0))
        key = (name, FAILED[2 * simplified_failed + legacy_failed], SLOWER[order])
        out[key] += count
    return out


def ratio_buckets(pairs: Mapping[PairKey, int]) -> dict[str, list[int]]:
    """``name -> cumulative pair counts`` at each of :data:`RATIO_LABELS`."""
    out: dict[str, list[int]] = {}
    for (name, _legacy, _simplified, _order, bucket), count in pairs.items():
        counts = out.setdefault(name, [0] * len(RATIO_LABELS))
        for index in range(bucket, len(RATIO_LABELS)):
            counts[index] += count
    return out


def _pair_attributes(name: str, failed: str, slower: str) -> dict[str, str]:
    return {semconv.ATTR_NAME: name, semconv.ATTR_FAILED: failed, semconv.ATTR_SLOWER: slower}


def _ratio_attributes(name: str, le: str) -> dict[str, str]:
    return {semconv.ATTR_NAME: name, semconv.ATTR_LE: le}


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



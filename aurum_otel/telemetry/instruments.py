"""The hot path's instruments: a tracer, the counters and attribute sets built once.

:class:`Instruments` are made per provider pair and owned by the registry (an
:class:`InstrumentSet`), so :func:`aurum_otel.reset` forgets their counts. Call and comparison
counts go to a lock-free per-thread :class:`~aurum_otel.telemetry.aggregate.Aggregator` that
OpenTelemetry reads through observable counters at collection time. A comparison recorded with a
sampled span leaves that span's ids for the next collection: the comparisons counter's exemplar,
which links a point in Prometheus to the trace in Jaeger.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, Span, SpanContext, TracerProvider

from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, Role
from aurum_otel.telemetry import semconv
from aurum_otel.telemetry.aggregate import Aggregator, ComparisonKey
from aurum_otel.telemetry.meters import UNLINKED, VERSION, meters_of
from aurum_otel.telemetry.sdk import add_event_at, frozen_attributes
from aurum_otel.telemetry.straight import end_span, span_starter

__all__ = ["Attributes", "InstrumentSet", "Instruments", "feature_flag_event",
           "monitoring_explicitly_on"]

logger = logging.getLogger("aurum_otel")

Attributes = Mapping[str, str]
CONTEXTS_KEPT = 4096  # routing keys' event attribute sets kept between calls


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
        # The meter provider's counters read whichever Instruments was made for it last: after
        # reset(), the new (empty) aggregator, not the forgotten one.
        self._meters = meters_of(meter_provider)
        self._meters.source = self
        self.tracer = trace.get_tracer(
            semconv.INSTRUMENTATION_SCOPE, VERSION, tracer_provider=tracer_provider
        )
        self._start = span_starter(self.tracer)
        self._lock = threading.Lock()
        self._failures: set[str] = set()  # span moments a tracer or processor raised at, logged
        self._span_attrs: dict[tuple[Any, ...], Attributes] = {}
        self._event_attrs: dict[tuple[str, Phase, str | None, str | None], Any] = {}
        self._contexts = 0  # keyed event attribute sets held
        self._call_attrs: dict[tuple[str, Phase, Implementation, Role, Outcome], Attributes] = {}
        self._comparison_attrs: dict[tuple[str, Phase, Comparison], Attributes] = {}
        # Per comparison series, the ids of the latest sampled span that counted in it: the
        # exemplar of its next point. Ids only (never the span: it must not outlive its run),
        # replaced by a lock-free dict store.
        self._links: dict[ComparisonKey, SpanContext] = {}
        # ``name -> configured percent`` of the migrations known (set by the registry): the
        # rollout gauge, which the generated split alert compares the observed split with.
        self.rollouts: Callable[[], Mapping[str, float]] | None = None

    def with_tracer(self, tracer_provider: TracerProvider | None) -> Instruments:
        """The same meters and aggregator, tracing to another provider."""
        clone = copy.copy(self)
        clone.tracer = trace.get_tracer(
            semconv.INSTRUMENTATION_SCOPE, VERSION, tracer_provider=tracer_provider
        )
        clone._start = span_starter(clone.tracer)
        clone._failures = set()
        return clone

    def start_span(self, name: str, attributes: Attributes, context: Context | None = None
                   ) -> Span:
        """Start a span with aurum-otel's cached attributes (see :func:`straight.span_starter`);
        where the tracer or a span processor raises, a non-recording span: telemetry never
        fails a call."""
        try:
            return self._start(name, attributes, context)  # type: ignore[no-any-return]
        except Exception:
            self._failed("start")
            return INVALID_SPAN

    def end_span(self, span: Span, end_time: int | None = None) -> None:
        """End ``span`` (see :func:`straight.end_span`); a span processor that raises loses the
        span, never the call."""
        try:
            end_span(span, end_time)
        except Exception:
            self._failed("end")

    def _failed(self, moment: str) -> None:
        with self._lock:
            first = moment not in self._failures
            self._failures.add(moment)
        if first:
            logger.warning("the tracer or a span processor raised at a span's %s; aurum-otel's "
                           "calls go on and lose those spans (logged once per provider)", moment,
                           exc_info=True)

    @property
    def transitions(self) -> Any:
        """The transitions counter (one per meter provider, like the observable counters)."""
        return self._meters.transitions

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
                               timestamp: int | None = None, source: str | None = None,
                               context_id: str | None = None) -> None:
        """Add the ``feature_flag.evaluation`` event (OTel feature-flag conventions).

        ``source`` (the resolved phase's, e.g. ``store``) refines the event's reason;
        ``context_id`` (a routed call's hashed routing key) is the event's
        ``feature_flag.context.id``. On the SDK's spans the event's attributes are validated once
        per (name, phase, source, context) and shared, instead of on every call (the last
        :data:`CONTEXTS_KEPT` contexts are kept); other spans get a plain ``add_event``.
        """
        key = (name, phase, source, context_id)
        attributes = self._event_attrs.get(key)
        if attributes is None:
            event = feature_flag_event(name, phase, source)
            if context_id is not None:
                event[semconv.ATTR_FF_CONTEXT_ID] = context_id
            attributes = frozen_attributes(event)
            with self._lock:
                if context_id is not None:
                    self._contexts += 1
                    if self._contexts > CONTEXTS_KEPT:  # forget the keyed ones, keep the others
                        self._event_attrs = {k: v for k, v in self._event_attrs.items()
                                             if k[3] is None}
                        self._contexts = 1
                self._event_attrs[key] = attributes
        add_event_at(span, semconv.EVENT_FEATURE_FLAG, attributes, timestamp)

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

    def record_comparison(self, name: str, phase: Phase, result: Comparison,
                          span: Span | None = None) -> None:
        """Count a comparison; ``span`` (else the current span), if sampled, is its exemplar."""
        key = (name, phase, result)
        self.aggregator.record_comparison(key)
        ids = (span if span is not None else trace.get_current_span()).get_span_context()
        if ids.trace_flags.sampled:  # what the SDK's trace-based exemplar filter keeps
            self._links[key] = ids

    def exemplar_context(self, key: ComparisonKey) -> Context:
        """The context whose span the comparison series ``key``'s next point links to."""
        ids = self._links.get(key)
        return UNLINKED if ids is None else trace.set_span_in_context(NonRecordingSpan(ids))


class InstrumentSet:
    """The :class:`Instruments` of each provider pair, for one registry's life.

    Providers of one meter share one aggregator (a second tracer provider gets a clone that
    traces elsewhere and counts in the same place).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_pair: dict[tuple[Any, Any], Instruments] = {}

    def get(self, tracer_provider: Any = None, meter_provider: Any = None
            ) -> tuple[Instruments, bool]:
        """The pair's instruments, and whether they were made now (with a new aggregator)."""
        pair = (tracer_provider, meter_provider)
        found = self._by_pair.get(pair)
        if found is not None:
            return found, False
        with self._lock:
            found = self._by_pair.get(pair)
            if found is not None:
                return found, False
            shared = next((i for (_, m), i in self._by_pair.items() if m is meter_provider), None)
            found = Instruments(tracer_provider, meter_provider) if shared is None else (
                shared.with_tracer(tracer_provider))
            self._by_pair[pair] = found
            return found, shared is None

    def aggregators(self) -> list[Aggregator]:
        with self._lock:
            return list({id(i.aggregator): i.aggregator for i in self._by_pair.values()}.values())


MONITORING_VARIABLE = "AURUM_ENABLE_MIGRATION_MONITORING"
_TRUE = frozenset({"1", "true", "yes", "on"})


def monitoring_explicitly_on() -> bool:
    """``AURUM_ENABLE_MIGRATION_MONITORING`` is set, and to a true value (the guide's step)."""
    return os.environ.get(MONITORING_VARIABLE, "").strip().lower() in _TRUE


# feature_flag.result.reason by the resolved phase's source (OTel's well-known values).
_REASON_OF_SOURCE = {"default": "default", "invalid": "error", "kill-switch": "disabled"}


def feature_flag_event(name: str, phase: Phase, source: str | None = None) -> dict[str, str]:
    """The ``feature_flag.evaluation`` event attributes (OTel feature-flag conventions).

    With ``source`` (the resolved phase's: ``store``, ``env``, ``default``...), the event carries
    ``feature_flag.result.reason``: ``split`` in hybrid (routed by percent), ``static`` for one
    phase for every call, ``default`` when nothing is configured, ``error`` when an invalid
    value fell back to legacy, ``disabled`` under the kill switch.
    """
    event = {
        semconv.ATTR_FF_KEY: semconv.FF_KEY.format(name=name),
        semconv.ATTR_FF_VARIANT: phase.value,
        semconv.ATTR_FF_PROVIDER: semconv.FF_PROVIDER,
    }
    if source is not None:
        reason = _REASON_OF_SOURCE.get(source)
        if reason is None:
            reason = "split" if phase is Phase.HYBRID else "static"
        event[semconv.ATTR_FF_REASON] = reason
    return event

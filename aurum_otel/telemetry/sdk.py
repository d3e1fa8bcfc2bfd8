"""The one place aurum-otel reaches past the OpenTelemetry API into the SDK's span internals.

What the API does not offer, each measured on the hot path (``benchmarks/profile_hot_path.py``):

- :func:`add_event_at`: an event whose attributes were validated once and are shared. The public
  ``span.add_event`` validates the same three attributes on every call (about 6.5 µs against
  1.5 µs per call, a sixth of a routed call's CPU). It uses the SDK's ``Event`` and, on an
  unended SDK span with room for it, appends it to the span's event list as the list's own
  ``append`` would (a full or ended span goes through ``Span._add_event``: the SDK drops the
  oldest, or refuses and warns), all private to the SDK.
- :func:`start_time_of`: when a span started (the SDK's ``ReadableSpan.start_time``; the API's
  ``Span`` does not have it), to end a span on another thread at the caller's own duration.

- :func:`start_span`: a span whose attributes (aurum-otel's own, plain strings, valid by
  construction) are attached right after it starts instead of being validated by the SDK on
  every span (about 4 µs of a legacy-phase call's ~32). Only for a tracer whose sampler is one
  of the SDK's own, which never read attributes, and within the span limits; otherwise the
  public ``start_span(attributes=...)``. A span processor's ``on_start`` sees the span without
  them (the SDK's processors do nothing there; ``on_end``, where exporters read, sees them).
  Used where :func:`span_starter` cannot start a span straight (an SDK it was not written for).

- :func:`span_starter`: for a tracer of the SDK with one of the SDK's own samplers, spans started
  the way the SDK's ``Tracer.start_span`` starts them (the tracer's sampler, id generator,
  internal metrics and span processors, in that order) minus its generality: the SDK's own span
  class with every field its constructor sets, built straight, aurum-otel's attributes already in
  the table when the processors' ``on_start`` sees the span (about 5 µs of a span's ~16). Used
  only where a probe span built by the SDK's constructor and one built here have the same
  fields, of the same types (the tracer's shared ones taken from the probe); the span is then an
  instance of the SDK's own class, so everything that reads or changes it (``set_attribute``,
  ``record_exception``, ``end``, processors, exporters) is the SDK's code. Where the sampler
  that decides for the span's parent is one of the SDK's static samplers (always on or off,
  alone or a parent-based delegate), its fixed answer is taken without the call (~2 µs a span);
  any other sampler is asked, as the SDK asks it.

All fall back to the public API when the span is not the SDK's, and
``tests/unit/telemetry/test_sdk.py`` fails loudly if the SDK changes any.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    get_current_span,
)

from aurum_otel.names import MAX_LENGTH

try:
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.trace import Event as _SdkEvent
    from opentelemetry.sdk.trace.sampling import ParentBased as _ParentBased
    from opentelemetry.sdk.trace.sampling import StaticSampler as _StaticSampler
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased as _TraceIdRatioBased
except ImportError:  # the API alone: plain add_event
    _SdkEvent = None  # type: ignore[assignment, misc]
try:
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace import _Span as _SdkSpan
    from opentelemetry.sdk.util import BoundedList as _BoundedList
except ImportError:  # no SDK, or one without these: the tracer's own start_span
    _SdkTracer = _SdkSpan = None  # type: ignore[assignment, misc]

__all__ = ["add_event_at", "attributes_after_start", "frozen_attributes", "set_known_attribute",
           "span_starter", "start_span", "start_time_of"]
_PARENT_BASED_DELEGATES = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                           "_local_parent_sampled", "_local_parent_not_sampled")


def frozen_attributes(attributes: Mapping[str, str]) -> Any:
    """``attributes`` validated once, immutable, to share between events (:func:`add_event_at`)."""
    if _SdkEvent is None:
        return attributes
    return _BoundedAttributes(attributes=attributes, immutable=True)


def add_event_at(span: Any, name: str, attributes: Any, timestamp: int | None = None) -> None:
    """Add event ``name`` to ``span``; ``attributes`` preferably from :func:`frozen_attributes`.

    On the SDK's spans the shared, pre-validated attributes are attached as they are; on any
    other span, a plain ``add_event``.
    """
    if span.__class__ is _SdkSpan and span._end_time is None:
        # room left: appended as BoundedList.append would, without its lock (the deque's append
        # is atomic; a writer racing this one could at worst leave the dropped count one short)
        queue = span._events._dq  # type: ignore[attr-defined]
        if queue.maxlen is None or len(queue) < queue.maxlen:
            queue.append(_SdkEvent(name, attributes, timestamp))
            return
    add = getattr(span, "_add_event", None)
    if add is not None and _SdkEvent is not None:
        add(_SdkEvent(name, attributes, timestamp))
    else:
        span.add_event(name, dict(attributes), timestamp)


def start_time_of(span: Any) -> int | None:
    """When ``span`` started (ns since the epoch), or ``None`` for a span that does not say."""
    start: int | None = getattr(span, "start_time", None)
    return start


def _reads_no_attributes(sampler: Any) -> bool:
    """The sampler is one of the SDK's own (static, trace-id ratio, parent-based over those),
    none of which reads a span's attributes to decide."""
    if _SdkEvent is None:
        return False
    kind = type(sampler)
    if kind is _StaticSampler or kind is _TraceIdRatioBased or (
            kind.__module__ == _StaticSampler.__module__ and issubclass(
                kind, _StaticSampler | _TraceIdRatioBased) and kind.should_sample in (
                _StaticSampler.should_sample, _TraceIdRatioBased.should_sample)):
        return True
    if isinstance(sampler, _ParentBased) and type(sampler).should_sample is (
            _ParentBased.should_sample):
        delegates = [getattr(sampler, name, None) for name in _PARENT_BASED_DELEGATES]
        return all(d is not None and _reads_no_attributes(d) for d in delegates)
    return False


def attributes_after_start(tracer: Any) -> bool:
    """Whether ``tracer``'s spans may get their attributes right after they start
    (:func:`start_span`): the SDK's tracer, with a sampler that reads no attributes."""
    return _SdkEvent is not None and _reads_no_attributes(getattr(tracer, "sampler", None))


def start_span(tracer: Any, name: str, attributes: Mapping[str, str], context: Any = None, *,
               after_start: bool = False) -> Any:
    """Start ``name`` with ``attributes`` (aurum-otel's own: valid strings, none longer than a
    migration name).

    With ``after_start`` (:func:`attributes_after_start` said so for ``tracer``), the span starts
    bare and gets them straight into its attribute table, within its limits; else, and on any
    span that is not the SDK's, the public path.
    """
    if not after_start:
        return tracer.start_span(name, context=context, attributes=attributes)
    span = tracer.start_span(name, context=context)
    table = getattr(span, "_attributes", None)
    if table is None:  # not recording (sampled out): nothing would keep them
        if span.is_recording():
            span.set_attributes(attributes)
        return span
    if (table.__class__ is _BoundedAttributes and not table._immutable
            and (table.maxlen is None or len(table) + len(attributes) <= table.maxlen)
            and (table.max_value_len is None or table.max_value_len >= _LONGEST)):
        table._dict.update(attributes)
    else:
        span.set_attributes(attributes)
    return span


def set_known_attribute(span: Any, key: str, value: str) -> None:
    """``span.set_attribute(key, value)`` for one of aurum-otel's own enumerated values (short,
    valid) on a span it started and has not ended: straight into the SDK span's table (about
    1 µs less), within its limits; the public call otherwise."""
    table = getattr(span, "_attributes", None)
    if (table is not None and table.__class__ is _BoundedAttributes and not table._immutable
            and (table.maxlen is None or len(table) < table.maxlen or key in table._dict)
            and (table.max_value_len is None or table.max_value_len >= len(value))):
        table._dict[key] = value
    else:
        span.set_attribute(key, value)


_LONGEST = MAX_LENGTH  # the longest value start_span is given: a migration name


# ------------------------------------------------------------------ spans started straight

Starter = Callable[[str, Mapping[str, str], Any], Any]

# The fields the SDK's span constructor sets (opentelemetry-sdk 1.45): those the same for every
# span of a tracer, and those each span gets its own of.
_SHARED_FIELDS = frozenset({
    "_kind", "_instrumentation_info", "_instrumentation_scope", "_end_time", "_resource",
    "_status", "_sampler", "_trace_config", "_record_exception", "_set_status_on_exception",
    "_span_processor", "_limits"})
_OWN_FIELDS = frozenset({"_name", "_context", "_parent", "_start_time", "_attributes", "_events",
                         "_links", "_lock", "_record_end_metrics"})
_FLAGS = {(sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else 0)
                                        | (TraceFlags.RANDOM_TRACE_ID if random else 0))
          for sampled in (False, True) for random in (False, True)}
_INTERNAL = SpanKind.INTERNAL
_new = object.__new__
_Lock = threading.Lock


class _Straight:
    """Starts one tracer's spans as its ``start_span(name, context)`` would, attributes in."""

    __slots__ = ("_attributes_fit", "_max_attributes", "_max_events", "_max_links",
                 "_max_value", "_shared", "_static", "_tracer")

    def __init__(self, tracer: Any, shared: dict[str, Any]) -> None:
        self._tracer = tracer
        limits = tracer._span_limits
        self._max_attributes = limits.max_span_attributes
        self._max_value = limits.max_span_attribute_length
        self._max_events = limits.max_events
        self._max_links = limits.max_links
        self._attributes_fit = self._max_value is None or self._max_value >= _LONGEST
        self._shared = shared  # the tracer's, as the SDK's constructor set them on a probe
        self._static = _static_decisions(tracer.sampler)

    def __call__(self, name: str, attributes: Mapping[str, str], context: Any = None) -> Any:
        tracer = self._tracer
        parent: SpanContext | None = get_current_span(context).get_span_context()
        if (not self._attributes_fit or not tracer._is_enabled()
                or parent.__class__ is not SpanContext or tracer.sampler is not
                self._shared["_sampler"] or (self._max_attributes is not None
                                             and len(attributes) > self._max_attributes)):
            # where it cannot hold the SDK's promises (limits, a sampler put on later): the
            # SDK's own start, which gives the sampler and on_start the attributes
            return tracer.start_span(name, context=context, attributes=attributes)
        ids = tracer.id_generator
        if parent.is_valid:
            trace_id, random = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            parent, trace_id, random = None, ids.generate_trace_id(), ids.is_trace_id_random()
        decision = self._static_decision(parent)
        if decision is not None:  # what the SDK's static sampler answers, without asking it
            trace_state = None if parent is None else parent.trace_state
            extra = None
        else:
            sampling = tracer.sampler.should_sample(context, trace_id, name, _INTERNAL, None, ())
            decision, trace_state, extra = (sampling.decision, sampling.trace_state,
                                            sampling.attributes)
        span_context = SpanContext(trace_id, ids.generate_span_id(), False,
                                   _FLAGS[decision.is_sampled(), bool(random)], trace_state)
        end_metrics = tracer._tracer_metrics.start_span(parent, decision)
        if not decision.is_recording():
            return NonRecordingSpan(span_context)
        span = self.build(name, span_context, parent, attributes, end_metrics)
        if extra:  # none from the SDK's samplers; a subclass's, the SDK's way
            span._attributes._set_items(extra)
        span._start_time = time_ns()
        self._shared["_span_processor"].on_start(span, parent_context=context)
        return span

    def _static_decision(self, parent: SpanContext | None) -> Any:
        """The decision of the sampler that decides for ``parent`` (the valid parent, or
        ``None`` for a root), where that is one of the SDK's static samplers (always on or off,
        alone or as a parent-based delegate), which answers its fixed decision and the parent's
        trace state; ``None`` where the sampler must be asked."""
        static = self._static
        if parent is None:
            return static[0]
        if parent.is_remote:
            return static[1] if parent.trace_flags.sampled else static[2]
        return static[3] if parent.trace_flags.sampled else static[4]

    def build(self, name: str, span_context: Any, parent: Any, attributes: Mapping[str, str],
              end_metrics: Any) -> Any:
        """The SDK's span object, not started: every field its constructor would set, stored in
        the order it stores them (so the object is laid out as the SDK's own: no separate
        attribute dict, no extra object for the garbage collector)."""
        shared = self._shared
        span = _new(_SdkSpan)
        span._name = name
        span._context = span_context
        span._kind = shared["_kind"]
        span._instrumentation_info = shared["_instrumentation_info"]
        span._instrumentation_scope = shared["_instrumentation_scope"]
        span._parent = parent
        span._start_time = None
        span._end_time = None
        table = _new(_BoundedAttributes)
        table._dict = dict(attributes)
        table.maxlen = self._max_attributes
        table.dropped = 0
        table.max_value_len = self._max_value
        table._lock = _Lock()
        table._immutable = False
        span._attributes = table
        events: Any = _new(_BoundedList)
        events.dropped = 0
        events._dq = deque(maxlen=self._max_events)
        events._lock = _Lock()
        span._events = events
        links: Any = _new(_BoundedList)
        links.dropped = 0
        links._dq = deque(maxlen=self._max_links)
        links._lock = _Lock()
        span._links = links
        span._resource = self._tracer.resource  # now: the provider updates it (after a fork)
        span._status = shared["_status"]
        span._sampler = shared["_sampler"]
        span._trace_config = shared["_trace_config"]
        span._record_exception = shared["_record_exception"]
        span._set_status_on_exception = shared["_set_status_on_exception"]
        span._span_processor = shared["_span_processor"]
        span._limits = shared["_limits"]
        span._lock = _Lock()
        span._record_end_metrics = end_metrics
        return span


def _static_decisions(sampler: Any) -> tuple[Any, ...]:
    """Per parent (none, remote sampled, remote not sampled, local sampled, local not sampled),
    the fixed decision of the SDK's static sampler that decides for it, or ``None`` where another
    sampler (a ratio, a user's) decides."""
    def fixed(delegate: Any) -> Any:
        return delegate._decision if type(delegate) is _StaticSampler else None

    if type(sampler) is _ParentBased:
        return tuple(fixed(getattr(sampler, name, None)) for name in _PARENT_BASED_DELEGATES)
    return (fixed(sampler),) * 5


def _same_object_graph(made: Any, built: Any) -> bool:
    """``built`` has exactly the fields ``made`` (by the SDK's constructor) has, each of the same
    type, and the same nested tables."""
    mine, theirs = vars(built), vars(made)
    if type(made) is not type(built) or mine.keys() != theirs.keys():
        return False
    if any(type(value) is not type(mine[key]) for key, value in theirs.items()):
        return False
    for key in ("_attributes", "_events", "_links"):
        inner_mine, inner_theirs = vars(mine[key]), vars(theirs[key])
        if inner_mine.keys() != inner_theirs.keys() or any(
                type(v) is not type(inner_mine[k]) for k, v in inner_theirs.items()):
            return False
    table, their_table = mine["_attributes"], theirs["_attributes"]
    return bool(mine["_events"]._dq.maxlen == theirs["_events"]._dq.maxlen
                and mine["_links"]._dq.maxlen == theirs["_links"]._dq.maxlen
                and dict(table) == dict(their_table) and table.maxlen == their_table.maxlen
                and table.max_value_len == their_table.max_value_len
                and table._immutable == their_table._immutable and table.dropped == 0)


def _straight(tracer: Any) -> _Straight | None:
    """A :class:`_Straight` for ``tracer`` if a probe span built by the SDK's constructor and
    one built straight are the same object graph; else ``None``."""
    if _SdkTracer is None or type(tracer) is not _SdkTracer or not attributes_after_start(tracer):
        return None
    try:
        if not (callable(tracer._is_enabled) and hasattr(tracer._tracer_metrics, "start_span")
                and hasattr(TraceFlags, "RANDOM_TRACE_ID")):
            return None
        probe = SpanContext(1, 1, False, _FLAGS[True, True])
        attributes = {"aurum.probe": "x"}
        made = _SdkSpan(
            name="probe", context=probe, parent=None, sampler=tracer.sampler,
            resource=tracer.resource, attributes=attributes, span_processor=tracer.span_processor,
            kind=_INTERNAL, links=(), instrumentation_info=tracer.instrumentation_info,
            record_exception=True, set_status_on_exception=True, limits=tracer._span_limits,
            instrumentation_scope=tracer._instrumentation_scope, record_end_metrics=None)
        fields = vars(made)
        if fields.keys() != _SHARED_FIELDS | _OWN_FIELDS:
            return None
        straight = _Straight(tracer, {key: fields[key] for key in _SHARED_FIELDS})
        built = straight.build("probe", probe, None, attributes, None)
        return straight if _same_object_graph(made, built) else None
    except Exception:  # an SDK this was not written for: its own start_span
        return None


def span_starter(tracer: Any) -> Starter:
    """How aurum-otel starts ``tracer``'s spans: ``starter(name, attributes, context)``.

    Straight (:class:`_Straight`) where the tracer is the SDK's with one of its own samplers and
    a probe proves the SDK's span is what this module builds; else :func:`start_span`, with the
    attributes after the start where the sampler reads none.
    """
    straight = _straight(tracer)
    if straight is not None:
        return straight
    after_start = attributes_after_start(tracer)

    def starter(name: str, attributes: Mapping[str, str], context: Any = None) -> Any:
        return start_span(tracer, name, attributes, context, after_start=after_start)

    return starter


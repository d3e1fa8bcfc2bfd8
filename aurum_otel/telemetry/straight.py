"""aurum-otel's spans started the way the OpenTelemetry SDK's ``Tracer.start_span`` starts them,
minus its generality (measured in ``benchmarks/profile_hot_path.py``).

For a tracer of the SDK with one of the SDK's own samplers (:func:`span_starter`): the tracer's
sampler, id generator, internal metrics and span processors, in that order, and the SDK's own span
class with every field its constructor sets, built straight, aurum-otel's attributes already in
the table when ``on_start`` sees the span. Used only where a probe span built by the SDK's
constructor and one built here have the same fields, of the same types; the span is then the
SDK's own class, so everything that reads or changes it is the SDK's code, and :func:`end_span`
ends it with the steps of the SDK's ``end``. A static sampler's fixed answer (always on or off,
alone or as a parent-based delegate) is taken without the call; any other sampler is asked. The
parent is read out of the context for the usual parents (none, or a span of the SDK's exact
class, asked for its context), and the ``SpanContext`` is built as the API's constructor builds
it where a probe at import shows both give the same tuple.

What protects a user's installation: the probes (the SDK's span fields and types,
``ReadableSpan``'s fields, ``SpanContext``'s tuple), the SDK methods stood in for checked to be
the SDK's own on every span (an agent's patch of ``Tracer.start_span`` or ``Span.__init__``/
``start``/``end``/``_readable_span``/``_add_event`` gets every span), and the public path
wherever either says no. A change of the SDK's logic that keeps its fields is caught by
``tests/unit/telemetry/test_sdk.py`` and ``test_straight_spans.py`` (straight == the SDK's own
over every SDK sampler, parent, limit and id, with hypothesis) on the SDK the project runs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry.context import get_current
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
    get_current_span,
)
from opentelemetry.trace import span as _api_span

from aurum_otel.telemetry.sdk import (
    LONGEST,
    PARENT_BASED_DELEGATES,
    attributes_after_start,
    sdks_own,
    start_span,
)

try:
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.resources import Resource as _Resource
    from opentelemetry.sdk.trace import ReadableSpan as _ReadableSpan
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace import _Span as _SdkSpan
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics as _NoOpTracerMetrics
    from opentelemetry.sdk.trace.sampling import Decision as _Decision
    from opentelemetry.sdk.trace.sampling import ParentBased as _ParentBased
    from opentelemetry.sdk.trace.sampling import StaticSampler as _StaticSampler
    from opentelemetry.sdk.util import BoundedList as _BoundedList
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # no SDK, or one without these: the tracer's own start_span
    _SdkTracer = _SdkSpan = None  # type: ignore[assignment, misc]

__all__ = ["Starter", "end_span", "span_starter"]

Starter = Callable[[str, Mapping[str, str], Any], Any]

# The fields the SDK's span constructor sets (opentelemetry-sdk 1.45): those the same for every
# span of a tracer, and those each span gets its own of.
_SHARED_FIELDS = frozenset({
    "_kind", "_instrumentation_info", "_instrumentation_scope", "_end_time", "_resource",
    "_status", "_sampler", "_trace_config", "_record_exception", "_set_status_on_exception",
    "_span_processor", "_limits"})
_OWN_FIELDS = frozenset({"_name", "_context", "_parent", "_start_time", "_attributes", "_events",
                         "_links", "_lock", "_record_end_metrics"})
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", None)  # an API before it: no straight spans
_FLAGS = {(sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else 0)
                                        | ((_RANDOM or 0) if random else 0))
          for sampled in (False, True) for random in (False, True)}
# The SDK's methods whose work the straight path does itself, as the SDK defines them: while
# they are (no agent or test double has patched one), the straight path is taken.
_SPAN_METHODS = ("__init__", "start", "end", "_readable_span")
_INIT, _START, _END, _READABLE = (sdks_own(_SdkSpan, name, (f"Span.{name}",))
                                   for name in _SPAN_METHODS)
_START_SPAN = sdks_own(_SdkTracer, "start_span", ("Tracer.start_span",))
_INTERNAL = SpanKind.INTERNAL
# what SpanContext's constructor gives a span without a trace state, and its valid id ranges
_NO_TRACE_STATE = getattr(_api_span, "DEFAULT_TRACE_STATE", None)  # None: the probe says no
_MAX_TRACE_ID, _MAX_SPAN_ID = 2**128 - 1, 2**64 - 1
_new, _tuple_new = object.__new__, tuple.__new__
_Lock = threading.Lock


class _Straight:
    """Starts one tracer's spans as its ``start_span(name, context)`` would, attributes in."""

    __slots__ = ("_ended_by", "_max_attributes", "_max_events", "_max_links", "_max_value",
                 "_metrics", "_most", "_processor", "_sampler", "_shared", "_static", "_tracer")

    def __init__(self, tracer: Any, shared: dict[str, Any]) -> None:
        self._tracer = tracer
        limits = tracer._span_limits
        self._max_attributes = limits.max_span_attributes
        self._max_value = limits.max_span_attribute_length
        self._max_events = limits.max_events
        self._max_links = limits.max_links
        # the most attributes a span starts with here (-1: values could be cut, never here)
        fit = self._max_value is None or self._max_value >= LONGEST
        self._most = -1 if not fit else (
            self._max_attributes if self._max_attributes is not None else 1 << 30)
        self._shared = shared  # the tracer's, as the SDK's constructor set them on a probe
        self._sampler = tracer.sampler
        self._processor = tracer.span_processor
        self._static = _static_decisions(tracer.sampler)
        self._metrics = tracer._tracer_metrics
        # the SDK's no-op internal metrics hand every span the same no-op: asked once
        self._ended_by = (self._metrics.start_span(None, _Decision.RECORD_AND_SAMPLE)
                          if type(self._metrics) is _NoOpTracerMetrics else None)

    def __call__(self, name: str, attributes: Mapping[str, str], context: Any = None) -> Any:
        tracer = self._tracer
        # get_current_span(context).get_span_context(), without its calls for the usual parents:
        # none, or the SDK's own span (its exact type: a proxy's __class__ may say so too)
        found = (get_current() if context is None else context).get(_SPAN_KEY)
        parent: SpanContext | None
        if found is None:
            parent = INVALID_SPAN_CONTEXT
        elif type(found) is _SdkSpan:
            parent = found.get_span_context()
        else:
            parent = get_current_span(context).get_span_context()
        if (len(attributes) > self._most or not tracer._is_enabled()
                or parent.__class__ is not SpanContext or tracer.sampler is not self._sampler
                or _SdkTracer.start_span is not _START_SPAN or _SdkSpan.__init__ is not _INIT
                or _SdkSpan.start is not _START):
            # where it cannot hold the SDK's promises (limits, a sampler put on later): the
            # SDK's own start, which gives the sampler and on_start the attributes
            return tracer.start_span(name, context=context, attributes=attributes)
        ids = tracer.id_generator
        static = self._static  # in PARENT_BASED_DELEGATES' order: root, remote, local
        if parent.is_valid:
            flags = parent.trace_flags
            trace_id, random = parent.trace_id, flags.random_trace_id
            fixed = (static[1] if flags.sampled else static[2]) if parent.is_remote else (
                static[3] if flags.sampled else static[4])
        else:
            parent, trace_id, random = None, ids.generate_trace_id(), ids.is_trace_id_random()
            fixed = static[0]
        if fixed is not None:  # what the SDK's static sampler answers, without asking it
            decision, sampled, recording = fixed
            trace_state = None if parent is None else parent.trace_state
        else:  # the SDK's other samplers, given no attributes, add none
            sampling = tracer.sampler.should_sample(context, trace_id, name, _INTERNAL, None, ())
            decision, trace_state = sampling.decision, sampling.trace_state
            sampled, recording = decision.is_sampled(), decision.is_recording()
        span_id = ids.generate_span_id()
        if _CONTEXTS_STRAIGHT:  # SpanContext(...) as its constructor builds it
            span_context = _span_context(trace_id, span_id, _FLAGS[sampled, bool(random)],
                                         trace_state)
        else:
            span_context = SpanContext(trace_id, span_id, False, _FLAGS[sampled, bool(random)],
                                       trace_state)
        end_metrics = self._ended_by
        if end_metrics is None:
            end_metrics = self._metrics.start_span(parent, decision)
        if not recording:
            return NonRecordingSpan(span_context)
        span = self.build(name, span_context, parent, attributes, end_metrics)
        span._start_time = time_ns()
        self._processor.on_start(span, parent_context=context)
        return span

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
    the fixed decision of the SDK's static sampler that decides for it (with whether it samples
    and records), or ``None`` where another sampler (a ratio, a user's) decides."""
    def fixed(delegate: Any) -> Any:
        if type(delegate) is not _StaticSampler:
            return None
        decision: Any = delegate._decision
        return decision, decision.is_sampled(), decision.is_recording()

    if type(sampler) is _ParentBased:
        return tuple(fixed(getattr(sampler, name, None)) for name in PARENT_BASED_DELEGATES)
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
                and _RANDOM is not None and _sdk_untouched()):
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


def _readable(span: Any) -> Any:
    """The finished span the SDK's ``Span._readable_span`` hands the processors, its fields
    stored as ``ReadableSpan``'s constructor stores them, in its order."""
    readable = _new(_ReadableSpan)
    readable._name = span._name
    readable._context = span._context
    readable._kind = span._kind
    readable._instrumentation_info = span._instrumentation_info
    readable._instrumentation_scope = span._instrumentation_scope
    readable._parent = span._parent
    readable._start_time = span._start_time
    readable._end_time = span._end_time
    readable._attributes = span._attributes
    readable._events = span._events
    readable._links = span._links
    readable._resource = span._resource
    readable._status = span._status
    return readable


def end_span(span: Any, end_time: int | None = None) -> None:
    """``span.end(end_time)``: on the SDK's span, the same steps as its ``end`` (under its lock
    the end time and the attributes frozen, then its end hook, the processors' ``_on_ending``
    and ``on_end``) with the finished span built field by field (~0.5 µs less); a span not
    started, or ended already, gets the SDK's own ``end`` (its error or its warning)."""
    if (span.__class__ is not _SdkSpan or not _ENDS_STRAIGHT or _SdkSpan.end is not _END
            or _SdkSpan._readable_span is not _READABLE):
        span.end(end_time)
        return
    with span._lock:
        ending = span._start_time is not None and span._end_time is None
        if ending:
            span._end_time = end_time if end_time is not None else time_ns()
            table: Any = span._attributes
            table._immutable = True
    if not ending:
        span.end(end_time)
        return
    if span._record_end_metrics:
        span._record_end_metrics()
    processor = span._span_processor
    processor._on_ending(span)
    processor.on_end(_readable(span))


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


def _sdk_untouched() -> bool:
    """The SDK's span and tracer methods whose work the straight path does are still the SDK's
    (checked again, more cheaply, on every span)."""
    return (_SdkTracer is not None and _SdkTracer.start_span is _START_SPAN is not None
            and all(own is not None and getattr(_SdkSpan, name) is own
                    for name, own in zip(_SPAN_METHODS, (_INIT, _START, _END, _READABLE),
                                         strict=True)))


def _ends_the_sdks_way() -> bool:
    """Whether the installed SDK's finished span is what :func:`_readable` builds: a probe span
    finished both ways has the same fields, each the same object."""
    if _SdkSpan is None:
        return False
    try:
        probe = _SdkSpan(name="probe", context=SpanContext(1, 1, False), resource=_Resource({}))
        probe._start_time = probe._end_time = 1
        theirs, mine = probe._readable_span(), _readable(probe)
        return bool(type(theirs) is type(mine) and vars(theirs).keys() == vars(mine).keys()
                    and all(value is vars(mine)[key] for key, value in vars(theirs).items()))
    except Exception:  # an SDK this was not written for: its own end
        return False


def _span_context(trace_id: int, span_id: int, flags: Any, trace_state: Any) -> Any:
    """``SpanContext(...)`` for a local span, without its ``__new__`` (what the probe checks)."""
    return _tuple_new(SpanContext, (
        trace_id, span_id, False, flags, _NO_TRACE_STATE if trace_state is None else trace_state,
        0 < trace_id <= _MAX_TRACE_ID and 0 < span_id <= _MAX_SPAN_ID))


def _contexts_the_apis_way() -> bool:
    """Whether the installed API's ``SpanContext`` is the tuple ``__call__`` builds: probes built
    both ways (valid and invalid ids, with and without a trace state) are equal, field by field."""
    try:
        state = TraceState([("k", "v")])
        flags = _FLAGS[True, True]
        for trace_id, span_id, trace_state in ((1, 2, None), (_MAX_TRACE_ID, _MAX_SPAN_ID, state),
                                               (0, 2, None), (1, 0, state), (1 << 128, 1, None)):
            made = SpanContext(trace_id, span_id, False, flags, trace_state)
            built = _span_context(trace_id, span_id, flags, trace_state)
            if not (type(made) is type(built) and tuple(made) == tuple(built)
                    and made.trace_state is built.trace_state and made.is_valid is built.is_valid
                    and made.trace_flags is built.trace_flags and len(vars(made)) == 0):
                return False
        return True
    except Exception:  # an API this was not written for: its own constructor
        return False


_ENDS_STRAIGHT = _ends_the_sdks_way()  # a fact about the installed SDK, found once
_CONTEXTS_STRAIGHT = _contexts_the_apis_way()  # and one about the API

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

All fall back to the public API when the span is not the SDK's, and
``tests/unit/telemetry/test_sdk.py`` fails loudly if the SDK changes any. Spans started without
the tracer's general path are :mod:`aurum_otel.telemetry.straight`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import FunctionType
from typing import Any

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
    from opentelemetry.sdk.trace import _Span as _SdkSpan
except ImportError:  # an SDK without it: events through Span._add_event
    _SdkSpan = None  # type: ignore[assignment, misc]


def sdks_own(cls: Any, name: str, qualnames: tuple[str, ...]) -> Any:
    """``cls.name`` if it is the SDK's own function as the SDK defines it (not patched, not
    wrapped by an agent or a test double), else ``None``: where aurum-otel does what an SDK
    method does without calling it, it does so only while the method is the SDK's."""
    function = getattr(cls, name, None) if cls is not None else None
    if (type(function) is FunctionType and function.__module__ == "opentelemetry.sdk.trace"
            and function.__qualname__ in qualnames):
        return function
    return None


# Span._add_event as the SDK defines it (a wrapper that takes the span's lock and refuses an
# ended span): while it is, add_event_at appends the same way without the two calls.
_ADD_EVENT = sdks_own(_SdkSpan, "_add_event", ("_check_span_ended.<locals>.wrapper",))

__all__ = ["add_event_at", "attributes_after_start", "frozen_attributes", "sdks_own",
           "set_known_attribute", "start_span", "start_time_of"]
PARENT_BASED_DELEGATES = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
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
    if span.__class__ is _SdkSpan and _SdkSpan._add_event is _ADD_EVENT is not None:
        # under the span's lock, as the SDK's _add_event: an unended span with room gets it
        # appended as BoundedList.append would; a full or ended one goes the SDK's way below
        event = _SdkEvent(name, attributes, timestamp)
        with span._lock:
            queue = span._events._dq  # type: ignore[attr-defined]
            if span._end_time is None and (queue.maxlen is None or len(queue) < queue.maxlen):
                queue.append(event)
                return
        span._add_event(event)
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
        delegates = [getattr(sampler, name, None) for name in PARENT_BASED_DELEGATES]
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
            and (table.max_value_len is None or table.max_value_len >= LONGEST)):
        table._dict.update(attributes)
    else:
        span.set_attributes(attributes)
    return span


def set_known_attribute(span: Any, key: str, value: str) -> None:
    """``span.set_attribute(key, value)`` for one of aurum-otel's own enumerated values (short,
    valid) on a span it started and has not ended: straight into the SDK span's table (about
    1 µs less), within its limits; the public call otherwise."""
    table = getattr(span, "_attributes", None)
    lock = getattr(span, "_lock", None)
    if (table is not None and lock is not None and table.__class__ is _BoundedAttributes
            and (table.maxlen is None or len(table) < table.maxlen or key in table._dict)
            and (table.max_value_len is None or table.max_value_len >= len(value))):
        with lock:  # as the SDK's set_attribute: an end cannot slip between check and write
            if not table._immutable:
                table._dict[key] = value
                return
    span.set_attribute(key, value)  # the SDK's way (an ended span: its warning)


LONGEST = MAX_LENGTH  # the longest value start_span is given: a migration name

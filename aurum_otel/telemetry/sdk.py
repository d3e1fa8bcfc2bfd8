"""The one place aurum-otel reaches past the OpenTelemetry API into the SDK's span internals.

Two things the API does not offer, both measured on the hot path
(``benchmarks/profile_hot_path.py``):

- :func:`add_event_at`: an event whose attributes were validated once and are shared. The public
  ``span.add_event`` validates the same three attributes on every call (about 6.5 µs against
  1.5 µs per call, a sixth of a routed call's CPU). It uses ``Span._add_event`` and the SDK's
  ``Event``, private to the SDK.
- :func:`start_time_of`: when a span started (the SDK's ``ReadableSpan.start_time``; the API's
  ``Span`` does not have it), to end a span on another thread at the caller's own duration.

Both fall back to the public API when the span is not the SDK's, and
``tests/unit/telemetry/test_sdk.py`` fails loudly if the SDK changes either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.trace import Event as _SdkEvent
except ImportError:  # the API alone: plain add_event
    _SdkEvent = None  # type: ignore[assignment, misc]

__all__ = ["add_event_at", "frozen_attributes", "start_time_of"]


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
    add = getattr(span, "_add_event", None)
    if add is not None and _SdkEvent is not None:
        add(_SdkEvent(name, attributes, timestamp))
    else:
        span.add_event(name, dict(attributes), timestamp)


def start_time_of(span: Any) -> int | None:
    """When ``span`` started (ns since the epoch), or ``None`` for a span that does not say."""
    start: int | None = getattr(span, "start_time", None)
    return start

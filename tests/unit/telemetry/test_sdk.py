"""The SDK adapter: the only private API aurum-otel uses, pinned so an SDK change fails here."""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry.sdk.trace import Event, Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN

from aurum_otel.telemetry.sdk import add_event_at, frozen_attributes, start_time_of

CHANGED = ("the OpenTelemetry SDK changed {what}: adapt aurum_otel/telemetry/sdk.py (or use the "
           "public API there and measure benchmarks/profile_hot_path.py)")


def test_the_sdk_still_has_what_the_adapter_uses() -> None:
    add = getattr(Span, "_add_event", None)
    assert callable(add), CHANGED.format(what="Span._add_event (gone)")
    assert list(inspect.signature(Event).parameters)[:3] == ["name", "attributes", "timestamp"], \
        CHANGED.format(what=f"Event's signature ({inspect.signature(Event)})")
    assert isinstance(inspect.getattr_static(Span, "start_time"), property), CHANGED.format(
        what="ReadableSpan.start_time")


def test_an_sdk_span_gets_the_shared_attributes_at_the_given_time() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = frozen_attributes({"feature_flag.key": "k", "feature_flag.result.variant": "v"})
    span = provider.get_tracer("t").start_span("s")
    start = start_time_of(span)
    assert isinstance(start, int) and start == span.start_time  # type: ignore[attr-defined]
    try:  # Span._add_event(event) is wrapped by the SDK: its signature is seen only by calling
        add_event_at(span, "feature_flag.evaluation", attributes, start)
        add_event_at(span, "feature_flag.evaluation", attributes, start + 1)
    except TypeError as exc:
        raise AssertionError(CHANGED.format(what=f"Span._add_event or Event ({exc})")) from exc
    span.end()
    first, second = exporter.get_finished_spans()[0].events
    assert first.attributes is attributes and second.attributes is attributes  # validated once
    assert (first.name, first.timestamp, second.timestamp) == (
        "feature_flag.evaluation", start, start + 1)
    assert dict(first.attributes or {}) == {"feature_flag.key": "k",
                                            "feature_flag.result.variant": "v"}


def test_other_spans_get_the_public_add_event() -> None:
    class ApiOnlySpan:
        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []

        def add_event(self, name: str, attributes: Any = None, timestamp: Any = None) -> None:
            self.events.append((name, attributes, timestamp))

    span = ApiOnlySpan()
    add_event_at(span, "e", frozen_attributes({"a": "b"}), 7)
    assert span.events == [("e", {"a": "b"}, 7)]
    assert start_time_of(span) is None and start_time_of(INVALID_SPAN) is None

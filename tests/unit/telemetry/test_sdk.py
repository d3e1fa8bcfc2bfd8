"""The SDK adapter: the only private API aurum-otel uses, pinned so an SDK change fails here."""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import threading
from typing import Any

import opentelemetry.attributes as sdk_attributes
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation import _SPAN_KEY

import aurum_otel.telemetry.instruments as instruments_module
from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.telemetry import straight as straight_module
from aurum_otel.telemetry.sdk import (
    add_event_at,
    attributes_after_start,
    frozen_attributes,
    set_known_attribute,
    start_span,
    start_time_of,
)
from aurum_otel.telemetry.straight import _Straight, end_span, span_starter

CHANGED = ("the OpenTelemetry SDK changed {what}: adapt aurum_otel/telemetry/sdk.py or "
           "straight.py (or use the public API there and measure "
           "benchmarks/profile_hot_path.py)")


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


# start_span: attributes attached right after the start, where no sampler reads them


ATTRIBUTES = {"aurum.migration.name": "orders", "aurum.migration.phase": "legacy",
              "aurum.migration.implementation": "legacy", "aurum.migration.outcome": "success"}


def _provider(**kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _one_routed_call(tmp_path: Any, provider: TracerProvider, phase: Phase) -> None:
    """One call of a migration in ``phase`` (hybrid: shadowed and compared), traced to
    ``provider``; its shadow finished."""
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", phase, Rollout(percent=0, compare=100), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated("orders", tracer_provider=provider)
        def load() -> int:
            return 1

        @load.simplified
        def _load_v2() -> int:
            return 1

        assert load() == 1
        telemetry.wait_for_shadows()


def test_the_sdk_still_has_what_start_span_uses() -> None:
    provider, _ = _provider()
    tracer = provider.get_tracer("t")
    assert attributes_after_start(tracer), CHANGED.format(what="Tracer.sampler or ParentBased")
    span = tracer.start_span("s")
    table = getattr(span, "_attributes", None)
    assert isinstance(table, BoundedAttributes), CHANGED.format(what="Span._attributes")
    for name in ("_dict", "maxlen", "max_value_len", "_immutable"):
        assert hasattr(table, name), CHANGED.format(what=f"BoundedAttributes.{name}")
    parent_based = ParentBased(ALWAYS_ON)
    for name in ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                 "_local_parent_sampled", "_local_parent_not_sampled"):
        assert hasattr(parent_based, name), CHANGED.format(what=f"ParentBased.{name}")


def test_late_attributes_export_exactly_what_the_public_path_does() -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start_span(tracer, "late", ATTRIBUTES, after_start=True).end()
    start_span(tracer, "public", ATTRIBUTES).end()
    late, public = exporter.get_finished_spans()
    assert dict(late.attributes or {}) == dict(public.attributes or {}) == ATTRIBUTES
    assert late.dropped_attributes == public.dropped_attributes == 0


class _ReadingSampler(Sampler):
    """A user's sampler that decides on attributes: it must see aurum-otel's."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        self.seen.append(dict(attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "reading"


def test_a_sampler_that_reads_attributes_gets_them_through_a_routed_call(tmp_path: Any) -> None:
    sampler = _ReadingSampler()
    provider, exporter = _provider(sampler=ParentBased(sampler))
    assert not attributes_after_start(provider.get_tracer("t"))
    with testing.CapturedTelemetry():
        @migrated("orders", tracer_provider=provider)
        def load() -> int:
            return 1

        assert load() == 1
    assert sampler.seen and sampler.seen[-1]["aurum.migration.name"] == "orders"
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["aurum.migration.name"] == "orders"


def test_span_limits_and_sampled_out_spans_take_the_public_path() -> None:
    provider, exporter = _provider(span_limits=SpanLimits(max_span_attributes=2))
    start_span(provider.get_tracer("t"), "limited", ATTRIBUTES, after_start=True).end()
    (span,) = exporter.get_finished_spans()
    assert len(span.attributes or {}) == 2 and span.dropped_attributes == 2  # as the SDK does
    provider, exporter = _provider(span_limits=SpanLimits(max_attribute_length=3))
    start_span(provider.get_tracer("t"), "short", ATTRIBUTES, after_start=True).end()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["aurum.migration.name"] == "ord"  # truncated by the SDK
    provider, exporter = _provider(sampler=ALWAYS_OFF)
    off = start_span(provider.get_tracer("t"), "off", ATTRIBUTES, after_start=True)
    assert not off.is_recording()
    off.end()
    assert exporter.get_finished_spans() == ()


def test_a_known_attribute_goes_in_as_set_attribute_would() -> None:
    provider, exporter = _provider()
    span = start_span(provider.get_tracer("t"), "s", ATTRIBUTES, after_start=True)
    set_known_attribute(span, "aurum.migration.outcome", "error")  # replaces, keeps the order
    set_known_attribute(span, "aurum.migration.comparison", "match")
    span.end()
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes or {}) == {**ATTRIBUTES, "aurum.migration.outcome": "error",
                                           "aurum.migration.comparison": "match"}
    provider, exporter = _provider(span_limits=SpanLimits(max_span_attributes=4))
    span = start_span(provider.get_tracer("t"), "full", ATTRIBUTES, after_start=True)
    set_known_attribute(span, "aurum.migration.comparison", "match")  # full: the SDK's rule
    span.end()
    (done,) = exporter.get_finished_spans()
    assert len(done.attributes or {}) == 4 and done.dropped_attributes == 1


def test_the_fast_path_skips_the_sdks_per_value_validation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the fast path is for: aurum-otel's own values are not validated again per span."""
    cleaned: list[object] = []
    original = sdk_attributes._clean_attribute_value

    def counting(value: Any, limit: Any) -> Any:
        cleaned.append(value)
        return original(value, limit)

    monkeypatch.setattr(sdk_attributes, "_clean_attribute_value", counting)
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start_span(tracer, "public", ATTRIBUTES).end()
    assert cleaned  # the public path validates
    cleaned.clear()
    span = start_span(tracer, "late", ATTRIBUTES, after_start=True)
    set_known_attribute(span, "aurum.migration.comparison", "match")
    span.end()
    assert cleaned == []
    assert dict(exporter.get_finished_spans()[-1].attributes or {}) == {
        **ATTRIBUTES, "aurum.migration.comparison": "match"}


# span_starter: the SDK's own spans, started straight


def _straight_and_public(**kwargs: Any) -> tuple[Any, Any, InMemorySpanExporter]:
    provider, exporter = _provider(**kwargs)
    tracer = provider.get_tracer("t")
    return span_starter(tracer), tracer, exporter


def test_a_straight_span_is_the_sdks_own_span_with_the_same_fields() -> None:
    start, tracer, _ = _straight_and_public()
    assert isinstance(start, _Straight), CHANGED.format(
        what="Span's constructor or Tracer.start_span (the probe built both ways differs)")
    straight = start("s", ATTRIBUTES)
    public = tracer.start_span("s", attributes=ATTRIBUTES)
    assert type(straight) is type(public) and isinstance(straight, Span)
    assert vars(straight).keys() == vars(public).keys()
    for key, value in vars(public).items():
        assert type(vars(straight)[key]) is type(value), key
        if key not in ("_context", "_start_time", "_attributes", "_events", "_links", "_lock"):
            assert vars(straight)[key] == value, key
    for key in ("_attributes", "_events", "_links"):
        assert vars(vars(straight)[key]).keys() == vars(vars(public)[key]).keys()
    assert straight._attributes is not public._attributes  # type: ignore[attr-defined]
    assert straight._lock is not public._lock  # type: ignore[attr-defined]


def test_straight_spans_export_exactly_what_the_public_path_does() -> None:
    start, tracer, exporter = _straight_and_public()
    root = start("migrate orders", ATTRIBUTES)
    child = start("shadow orders", ATTRIBUTES, trace.set_span_in_context(root))
    set_known_attribute(child, "aurum.migration.comparison", "match")
    child.add_event("e", {"k": "v"})
    child.end()
    root.end()
    public_root = tracer.start_span("migrate orders", attributes=ATTRIBUTES)
    public_child = tracer.start_span("shadow orders", trace.set_span_in_context(public_root),
                                     attributes=ATTRIBUTES)
    public_child.set_attribute("aurum.migration.comparison", "match")
    public_child.add_event("e", {"k": "v"})
    public_child.end()
    public_root.end()
    mine_child, mine_root, their_child, their_root = exporter.get_finished_spans()
    for mine, theirs in ((mine_root, their_root), (mine_child, their_child)):
        assert (mine.name, mine.kind, mine.status.status_code, mine.resource,
                mine.instrumentation_scope) == (theirs.name, theirs.kind,
                                                theirs.status.status_code, theirs.resource,
                                                theirs.instrumentation_scope)
        assert dict(mine.attributes or {}) == dict(theirs.attributes or {})
        assert [(e.name, dict(e.attributes or {})) for e in mine.events] == [
            (e.name, dict(e.attributes or {})) for e in theirs.events]
        assert mine.context.trace_flags == theirs.context.trace_flags
        assert mine.context.trace_flags.sampled and mine.context.trace_flags.random_trace_id
        assert mine.start_time is not None and mine.end_time is not None
        assert mine.start_time <= mine.end_time
    assert mine_root.parent is None and mine_child.parent == mine_root.context
    assert mine_child.context.trace_id == mine_root.context.trace_id
    assert mine_root.context.span_id != mine_child.context.span_id
    assert mine_root.context.trace_id != their_root.context.trace_id  # a new trace each root


def test_a_straight_span_under_a_remote_parent_keeps_its_trace_and_state() -> None:
    start, _, exporter = _straight_and_public()
    remote = SpanContext(0x1234, 0x5678, True, TraceFlags(TraceFlags.SAMPLED),
                         TraceState([("vendor", "value")]))
    span = start("migrate orders", ATTRIBUTES, trace.set_span_in_context(NonRecordingSpan(remote)))
    span.end()
    (done,) = exporter.get_finished_spans()
    assert done.context.trace_id == 0x1234 and done.parent == remote
    assert done.context.trace_state == remote.trace_state
    assert not done.context.trace_flags.random_trace_id  # as the parent said


def test_a_straight_span_asks_the_sampler_and_keeps_a_ratio() -> None:
    start, _, exporter = _straight_and_public(sampler=TraceIdRatioBased(0.25))
    spans = [start("s", ATTRIBUTES) for _ in range(4000)]
    recorded = sum(span.is_recording() for span in spans)
    unsampled = next(span for span in spans if not span.is_recording())
    for span in spans:
        span.end()
    assert 800 < recorded < 1200  # one sampler decision per span, not two
    assert len(exporter.get_finished_spans()) == recorded
    assert not unsampled.get_span_context().trace_flags.sampled
    assert unsampled.get_span_context().is_valid  # ids for propagation, as the SDK's


def test_processors_see_a_straight_span_start_with_its_attributes() -> None:
    seen: list[dict[str, Any]] = []

    class Watching(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            seen.append(dict(span.attributes or {}))

    provider, _ = _provider()
    provider.add_span_processor(Watching())
    start = span_starter(provider.get_tracer("t"))
    assert isinstance(start, _Straight)
    start("s", ATTRIBUTES).end()
    assert seen == [ATTRIBUTES]


def test_a_user_span_inside_a_straight_span_is_its_child() -> None:
    start, tracer, exporter = _straight_and_public()
    span = start("migrate orders", ATTRIBUTES)
    with trace.use_span(span, end_on_exit=True), tracer.start_as_current_span("user"):
        trace.get_current_span().set_attribute("user.key", "v")
    user, outer = exporter.get_finished_spans()
    assert user.parent == outer.context and dict(user.attributes or {}) == {"user.key": "v"}


def test_straight_start_steps_aside_where_it_cannot_hold_the_sdks_promises() -> None:
    provider, exporter = _provider(span_limits=SpanLimits(max_span_attributes=2))
    start = span_starter(provider.get_tracer("t"))
    start("limited", ATTRIBUTES).end()
    (span,) = exporter.get_finished_spans()
    assert len(span.attributes or {}) == 2 and span.dropped_attributes == 2  # as the SDK does
    provider, exporter = _provider(span_limits=SpanLimits(max_attribute_length=3))
    span_starter(provider.get_tracer("t"))("short", ATTRIBUTES).end()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["aurum.migration.name"] == "ord"
    provider, exporter = _provider(sampler=ALWAYS_OFF)
    off = span_starter(provider.get_tracer("t"))("off", ATTRIBUTES)
    assert not off.is_recording()
    off.end()
    assert exporter.get_finished_spans() == ()
    sampler = _ReadingSampler()
    provider, _ = _provider(sampler=ParentBased(sampler))
    assert not isinstance(span_starter(provider.get_tracer("t")), _Straight)
    span_starter(provider.get_tracer("t"))("read", ATTRIBUTES).end()
    assert sampler.seen == [ATTRIBUTES]


def test_a_disabled_tracer_gets_no_recording_span_from_the_straight_start() -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    tracer._tracer_config = type(tracer._tracer_config)(is_enabled=False)  # type: ignore[attr-defined]
    span = start("off", ATTRIBUTES)
    assert not span.is_recording()
    span.end()
    assert exporter.get_finished_spans() == ()


def test_an_sdk_whose_span_differs_gets_the_tracers_own_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = Span.__init__

    def with_a_new_field(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._something_new = []

    monkeypatch.setattr(Span, "__init__", with_a_new_field)
    provider, exporter = _provider()
    start = span_starter(provider.get_tracer("t"))
    assert not isinstance(start, _Straight)
    start("s", ATTRIBUTES).end()
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes or {}) == ATTRIBUTES


def test_a_straight_span_is_laid_out_as_the_sdks_own() -> None:
    """No separate attribute dict per object (the SDK's constructor keeps its fields inline):
    a straight span adds no object for the garbage collector that the SDK's does not."""
    start, tracer, _ = _straight_and_public()
    straight, public = start("s", ATTRIBUTES), tracer.start_span("s", attributes=ATTRIBUTES)

    def shape(span: Any) -> list[list[str]]:
        return [sorted(type(ref).__name__ for ref in gc.get_referents(obj))
                for obj in (span, span._attributes, span._events, span._links)]

    assert shape(straight) == shape(public)
    assert not any(name == "dict" for name in shape(straight)[0])


@pytest.mark.parametrize("phase", [Phase.LEGACY, Phase.HYBRID])
def test_processors_see_a_routed_calls_attributes_and_usual_outcome_at_its_start(
        tmp_path: Any, phase: Phase) -> None:
    """What a span processor's ``on_start`` sees of a routed call: the routing attributes and the
    usual outcome (``success``; only an error or a fallback changes it), in every phase."""
    seen: dict[str, dict[str, Any]] = {}

    class Watching(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            seen[span.name] = dict(span.attributes or {})

    provider, exporter = _provider()
    provider.add_span_processor(Watching())
    _one_routed_call(tmp_path, provider, phase)
    assert seen["migrate orders"]["aurum.migration.outcome"] == "success"
    assert seen["migrate orders"]["aurum.migration.phase"] == phase.value
    done = {span.name: span for span in exporter.get_finished_spans()}
    assert (done["migrate orders"].attributes or {})["aurum.migration.outcome"] == "success"
    assert ("shadow orders" in done) is (phase is Phase.HYBRID)


def test_the_sdks_static_samplers_decide_without_being_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ALWAYS_ON/ALWAYS_OFF (alone or as a parent-based delegate) answer a fixed decision and the
    parent's trace state: the straight start gives that answer without the call; a ratio
    sampler is asked."""
    asked: list[str] = []
    for kind in (ParentBased, StaticSampler, TraceIdRatioBased):
        original = kind.should_sample

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            asked.append(type(self).__name__)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(kind, "should_sample", counting)
    assert StaticSampler(Decision.DROP)._decision is Decision.DROP, CHANGED.format(
        what="StaticSampler._decision")
    start, tracer, _ = _straight_and_public()
    root = start("root", ATTRIBUTES)
    child = start("child", ATTRIBUTES, trace.set_span_in_context(root))
    remote = SpanContext(0x1234, 0x5678, True, TraceFlags(TraceFlags.DEFAULT),
                         TraceState([("vendor", "value")]))
    dropped = start("dropped", ATTRIBUTES, trace.set_span_in_context(NonRecordingSpan(remote)))
    assert asked == []
    assert root.is_recording() and child.is_recording() and not dropped.is_recording()
    assert dropped.get_span_context().trace_state == remote.trace_state
    assert not dropped.get_span_context().trace_flags.sampled
    public = tracer.start_span("public", trace.set_span_in_context(NonRecordingSpan(remote)))
    assert not public.is_recording() and asked  # the SDK asks, and says the same
    assert public.get_span_context().trace_state == remote.trace_state
    asked.clear()
    ratio, _, _ = _straight_and_public(sampler=ParentBased(TraceIdRatioBased(0.5)))
    ratio("asked", ATTRIBUTES)
    assert asked == ["ParentBased", "TraceIdRatioBased"]


def test_an_event_on_an_ended_or_full_sdk_span_goes_the_sdks_way(
        caplog: pytest.LogCaptureFixture) -> None:
    attributes = frozen_attributes({"feature_flag.key": "k"})
    provider, exporter = _provider(span_limits=SpanLimits(max_events=1))
    span = span_starter(provider.get_tracer("t"))("s", ATTRIBUTES)
    add_event_at(span, "first", attributes, 1)
    add_event_at(span, "second", attributes, 2)  # over the limit: the SDK drops the oldest
    span.end()
    add_event_at(span, "late", attributes, 3)  # ended: the SDK refuses, and says so
    (done,) = exporter.get_finished_spans()
    assert [event.name for event in done.events] == ["second"] and done.dropped_events == 1
    assert "ended span" in caplog.text


# end_span: the SDK's span ended with the same steps, the finished span built field by field


class _Recording(SpanProcessor):
    def __init__(self) -> None:
        self.ending: list[str] = []
        self.ended: list[Any] = []

    def _on_ending(self, span: Any) -> None:
        self.ending.append(span.name)

    def on_end(self, span: Any) -> None:
        self.ended.append(span)


def test_a_span_ended_straight_is_what_the_sdks_end_hands_the_processors() -> None:
    assert straight_module._ENDS_STRAIGHT, CHANGED.format(what="ReadableSpan or _readable_span")
    provider, exporter = _provider()
    recording = _Recording()
    provider.add_span_processor(recording)
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    for end in (end_span, lambda span, at=None: span.end(at)):
        span = start("s", ATTRIBUTES)
        add_event_at(span, "e", frozen_attributes({"k": "v"}), 5)
        span.set_status(Status(StatusCode.ERROR, "boom"))
        end(span, 1_000 + (span.start_time or 0))
    mine, theirs = recording.ended
    assert type(mine) is type(theirs)
    assert vars(mine).keys() == vars(theirs).keys()
    for key, value in vars(theirs).items():
        if key not in ("_context", "_start_time", "_end_time", "_attributes", "_events",
                       "_links", "_status"):
            assert vars(mine)[key] == value, key
    assert (mine.status.status_code, mine.status.description) == (
        theirs.status.status_code, theirs.status.description) == (StatusCode.ERROR, "boom")
    assert mine.end_time == mine.start_time + 1_000  # type: ignore[operator]
    assert dict(mine.attributes or {}) == dict(theirs.attributes or {}) == ATTRIBUTES
    assert [e.name for e in mine.events] == [e.name for e in theirs.events] == ["e"]
    assert recording.ending == ["s", "s"]  # _on_ending, as the SDK's end calls it
    exported_mine, exported_theirs = exporter.get_finished_spans()
    assert exported_mine.context == mine.context and exported_theirs.context == theirs.context


def test_ending_a_span_straight_twice_or_unstarted_goes_the_sdks_way(
        caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = _provider()
    span = span_starter(provider.get_tracer("t"))("s", ATTRIBUTES)
    end_span(span)
    with pytest.raises(TypeError, match="immutable"):
        span._attributes["late"] = "x"  # type: ignore[attr-defined]  # frozen, as the SDK's
    end_span(span)
    assert "ended span" in caplog.text or "Calling end() on an ended span" in caplog.text
    assert len(exporter.get_finished_spans()) == 1
    other = provider.get_tracer("t").start_span("other")
    other._start_time = None  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="not started"):
        end_span(other)
    api_only = NonRecordingSpan(SpanContext(1, 1, False))
    end_span(api_only)  # any other span: its own end
    assert not api_only.is_recording()


def test_a_routed_calls_spans_are_ended_straight(tmp_path: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ended: list[str] = []
    original = straight_module.end_span

    def watching(span: Any, end_time: Any = None) -> None:
        ended.append(span.name)
        original(span, end_time)

    monkeypatch.setattr(instruments_module, "end_span", watching)
    provider, exporter = _provider()
    _one_routed_call(tmp_path, provider, Phase.HYBRID)
    assert sorted(ended) == ["migrate orders", "shadow orders"]
    done = {span.name: span for span in exporter.get_finished_spans()}
    assert (done["shadow orders"].attributes or {})["aurum.migration.comparison"] == "match"
    assert done["shadow orders"].parent == done["migrate orders"].context


# What the straight paths do without the SDK's calls, and where they step aside


def test_the_straight_paths_skip_the_sdks_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """What they are for: no BoundedList.append for an event, no ReadableSpan constructor for
    an end (fails if either fast path is turned off)."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util import BoundedList

    calls: list[str] = []
    append, readable_init = BoundedList.append, ReadableSpan.__init__

    def counting_append(self: Any, item: Any) -> None:
        calls.append("append")
        append(self, item)

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append("readable")
        readable_init(self, *args, **kwargs)

    provider, exporter = _provider()
    start = span_starter(provider.get_tracer("t"))  # its probe builds the SDK's own span
    monkeypatch.setattr(BoundedList, "append", counting_append)
    monkeypatch.setattr(ReadableSpan, "__init__", counting_init)
    span = start("s", ATTRIBUTES)
    add_event_at(span, "e", frozen_attributes({"k": "v"}), 1)
    end_span(span)
    assert calls == []
    (done,) = exporter.get_finished_spans()
    assert [event.name for event in done.events] == ["e"] and done.end_time is not None
    public = provider.get_tracer("t").start_span("p")
    public.add_event("e")
    public.end()
    assert calls == ["readable", "append", "readable"]  # the SDK's own path, for scale


@pytest.mark.parametrize("method", ["start", "end", "_add_event", "__init__"])
def test_an_sdk_method_patched_by_an_agent_is_called_not_bypassed(
        monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """An APM agent or a test double that wraps one of the SDK's span methods the straight
    paths stand in for sees every aurum-otel span go through it."""
    seen: list[str] = []
    original = getattr(Span, method)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(method)
        return original(self, *args, **kwargs)

    provider, exporter = _provider()
    start = span_starter(provider.get_tracer("t"))
    assert isinstance(start, _Straight)
    monkeypatch.setattr(Span, method, wrapper)  # after the starter was made, as an agent may
    span = start("s", ATTRIBUTES)
    add_event_at(span, "e", frozen_attributes({"k": "v"}), 1)
    end_span(span)
    assert method in seen
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes or {}) == ATTRIBUTES and len(done.events) == 1


def test_a_patched_tracer_start_span_is_called_not_bypassed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import Tracer

    seen: list[str] = []
    original = Tracer.start_span

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append("start_span")
        return original(self, *args, **kwargs)

    provider, exporter = _provider()
    start = span_starter(provider.get_tracer("t"))
    monkeypatch.setattr(Tracer, "start_span", wrapper)  # after the starter was made
    start("s", ATTRIBUTES).end()
    assert seen == ["start_span"]
    assert dict(exporter.get_finished_spans()[0].attributes or {}) == ATTRIBUTES


def test_an_api_without_the_random_trace_id_flag_imports_and_starts_no_span_straight(
        tmp_path: Any) -> None:
    """opentelemetry-api before RANDOM_TRACE_ID (1.27 to 1.40 are allowed): aurum-otel imports and
    does not start spans straight (the installed SDK itself needs the flag to start one, so the
    span is not started here)."""
    script = tmp_path / "old_api.py"
    script.write_text(
        "from opentelemetry.trace import TraceFlags\n"
        "del TraceFlags.RANDOM_TRACE_ID\n"
        "import aurum_otel\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from aurum_otel.telemetry import straight\n"
        "start = straight.span_starter(TracerProvider().get_tracer('t'))\n"
        "assert not isinstance(start, straight._Straight)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("write", ["attribute", "event"])
def test_a_straight_write_waits_for_the_spans_lock_as_the_sdks_does(write: str) -> None:
    """An end racing aurum-otel's own attribute or event write cannot slip between its check
    and its write (it would land in a span already handed to the exporters): the write holds
    the span's lock, as the SDK's set_attribute and _add_event do."""
    provider, exporter = _provider()
    span = span_starter(provider.get_tracer("t"))("s", ATTRIBUTES)
    done = threading.Event()

    def writing() -> None:
        if write == "attribute":
            set_known_attribute(span, "aurum.migration.comparison", "match")
        else:
            add_event_at(span, "e", frozen_attributes({"k": "v"}), 1)
        done.set()

    with span._lock:  # type: ignore[attr-defined]  # another thread is ending it, say
        writer = threading.Thread(target=writing)
        writer.start()
        assert not done.wait(0.2)  # the write waits for the lock
    writer.join(5)
    assert done.is_set()
    end_span(span)
    (finished,) = exporter.get_finished_spans()
    if write == "attribute":
        assert (finished.attributes or {})["aurum.migration.comparison"] == "match"
    else:
        assert [event.name for event in finished.events] == ["e"]


@pytest.mark.parametrize("parent", ["none", "current sdk span", "given sdk span",
                                    "given non-recording span", "not a span"])
def test_a_straight_span_finds_its_parent_as_get_current_span_does(parent: str) -> None:
    """The straight start reads the parent out of the context itself for the usual parents (none,
    the SDK's span); every kind of parent gives the span the SDK's own start would give it."""
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    assert isinstance(start, _Straight)
    outer = tracer.start_span("outer")
    remote = SpanContext(0x1F, 0x2F, True, TraceFlags(TraceFlags.SAMPLED))
    context: Any = {
        "none": None,
        "current sdk span": None,
        "given sdk span": trace.set_span_in_context(outer),
        "given non-recording span": trace.set_span_in_context(NonRecordingSpan(remote)),
        "not a span": otel_context.set_value(_SPAN_KEY, "not a span"),
    }[parent]
    token = otel_context.attach(trace.set_span_in_context(outer)) if parent == "current sdk span" \
        else None
    try:
        ours = start("ours", ATTRIBUTES, context)
        theirs = tracer.start_span("theirs", context=context, attributes=ATTRIBUTES)
    finally:
        if token is not None:
            otel_context.detach(token)
    end_span(ours)
    theirs.end()
    outer.end()
    made = {span.name: span for span in exporter.get_finished_spans()}
    assert made["ours"].parent == made["theirs"].parent
    assert made["ours"].context.trace_id == made["theirs"].context.trace_id or parent in (
        "none", "not a span")  # a root span gets a trace of its own
    expected = {"none": None, "not a span": None, "given non-recording span": remote}.get(
        parent, outer.get_span_context())
    assert made["ours"].parent == expected


def test_a_patched_get_span_context_is_called_for_a_straight_spans_parent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = Span.get_span_context

    def wrapper(self: Any) -> Any:
        seen.append(self.name)
        return original(self)

    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    outer = tracer.start_span("outer")
    monkeypatch.setattr(Span, "get_span_context", wrapper)  # after the starter, as an agent may
    end_span(start("inner", ATTRIBUTES, trace.set_span_in_context(outer)))
    assert "outer" in seen
    (inner,) = exporter.get_finished_spans()
    assert inner.parent == outer.get_span_context()


def test_a_straight_span_context_is_the_one_the_apis_constructor_builds() -> None:
    """Where the probe says the API's ``SpanContext`` is the tuple the straight start builds,
    the straight span's context equals, field by field, the one its constructor would build; where
    the probe cannot vouch for it (here: no default trace state to share), the constructor."""
    assert straight_module._contexts_the_apis_way()
    provider, _ = _provider()
    start = span_starter(provider.get_tracer("t"))
    remote = SpanContext(0x1F, 0x2F, True, TraceFlags(TraceFlags.SAMPLED),
                         TraceState([("vendor", "x")]))
    for context in (None, trace.set_span_in_context(NonRecordingSpan(remote))):
        made = start("s", ATTRIBUTES, context).get_span_context()
        rebuilt = SpanContext(made.trace_id, made.span_id, made.is_remote, made.trace_flags,
                              None if context is None else made.trace_state)
        assert type(made) is SpanContext and tuple(made) == tuple(rebuilt)
        assert made.trace_state is rebuilt.trace_state and made.is_valid


def test_the_span_context_probe_refuses_what_it_cannot_vouch_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(straight_module, "_NO_TRACE_STATE", None)
    assert not straight_module._contexts_the_apis_way()
    monkeypatch.setattr(straight_module, "_NO_TRACE_STATE", TraceState())  # not the API's own
    assert not straight_module._contexts_the_apis_way()


@pytest.mark.parametrize("kind", ["instance patch", "proxy override"])
def test_a_parent_whose_span_context_is_overridden_is_asked(kind: str) -> None:
    """A current span whose ``get_span_context`` is replaced on the instance (a test's
    ``mock.patch.object``) or overridden by a proxy: the straight start asks it, as the SDK's
    ``start_span`` does."""
    import wrapt

    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    other = SpanContext(0xABC, 0xDEF, False, TraceFlags(TraceFlags.SAMPLED))

    class Proxy(wrapt.ObjectProxy):  # type: ignore[misc]
        def get_span_context(self) -> SpanContext:
            return other

    outer = tracer.start_span("outer")
    if kind == "instance patch":
        outer.get_span_context = lambda: other  # type: ignore[method-assign]
        parent: Any = outer
    else:
        parent = Proxy(outer)
    context = trace.set_span_in_context(parent)
    end_span(start("ours", ATTRIBUTES, context))
    tracer.start_span("theirs", context=context).end()
    made = {span.name: span for span in exporter.get_finished_spans()}
    assert made["ours"].parent == made["theirs"].parent == other


@pytest.mark.parametrize("ids", [(0, 0x1), (1 << 128, 0x2), (0x3, 0), (0x4, 1 << 64)])
def test_ids_a_custom_generator_gets_wrong_give_the_constructors_span_context(
        ids: tuple[int, int]) -> None:
    """A user's id generator that returns ids out of range: the straight span's context says it
    is invalid exactly as ``SpanContext``'s constructor would."""
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Odd(IdGenerator):
        def generate_trace_id(self) -> int:
            return ids[0]

        def generate_span_id(self) -> int:
            return ids[1]

    provider, _ = _provider(id_generator=Odd())
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    assert isinstance(start, _Straight)
    ours = start("s", ATTRIBUTES).get_span_context()
    theirs = tracer.start_span("s", attributes=ATTRIBUTES).get_span_context()
    assert (ours.trace_id, ours.span_id) == ids
    assert tuple(ours) == tuple(theirs) and not ours.is_valid

"""Adversarial review of spans started straight (``straight.span_starter``, commit bf066a7).

Contract: a span aurum-otel starts through :func:`span_starter` is, in everything a user can see
(the returned span, what is exported, the SDK's internal span metrics, what processors see and
what raises), what the SDK's own ``tracer.start_span(name, context=ctx, attributes=attrs)`` gives.
Each test runs both ways on twin providers (same sampler, limits, seeded id generator, resource)
and compares.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import random
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    StatusCode,
    TraceFlags,
    TraceState,
)

import aurum_otel.telemetry.straight as straight_module
from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.telemetry import semconv
from aurum_otel.telemetry.straight import _Straight, end_span, span_starter
from tests.unit.telemetry.test_sdk import _ReadingSampler

ATTRIBUTES = {semconv.ATTR_NAME: "orders", semconv.ATTR_PHASE: "legacy",
              semconv.ATTR_IMPLEMENTATION: "legacy", semconv.ATTR_OUTCOME: "success"}
METRICS_ON = {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}
STARTED, LIVE = "otel.sdk.span.started", "otel.sdk.span.live"
RESOURCE = Resource({"service.name": "svc", "service.instance.id": "before"})
Start = Callable[[str, Mapping[str, str], Any], Any]


class _Ids(IdGenerator):
    """Seeded ids: twin providers hand out the same ids, so whole span contexts compare."""

    def __init__(self, seed: int, random_ids: bool = True) -> None:
        self._rng = random.Random(seed)
        self._random = random_ids

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return self._random


class _Seen(SpanProcessor):
    """What a processor sees: each start's name and attributes, and whether it got the context."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any], bool]] = []
        self.ended = 0
        self.context: Any = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append((span.name, dict(span.attributes or {}),
                             parent_context is self.context))

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


class _Side:
    """One provider, started one way (``straight``: span_starter's; else the SDK's own)."""

    def __init__(self, straight: bool, *, sampler: Sampler = ALWAYS_ON, limits: SpanLimits | None
                 = None, seed: int = 7, random_ids: bool = True, metrics: bool = True,
                 processor: Any = None, resource: Resource = RESOURCE,
                 expect_straight: bool = True) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.seen = _Seen()
        env = METRICS_ON if metrics else {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "false"}
        with mock.patch.dict(os.environ, env):  # read when the tracer is made
            self.provider = TracerProvider(
                sampler=sampler, resource=resource, shutdown_on_exit=False,
                id_generator=_Ids(seed, random_ids), span_limits=limits or SpanLimits(),
                active_span_processor=processor,
                meter_provider=MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False))
            self.provider.add_span_processor(self.seen)
            self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self.tracer = self.provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, "1.0")
        self.straight = straight
        if straight:
            self.start: Start = span_starter(self.tracer)
            # else the test tests nothing (limits that truncate the probe's value step aside)
            assert isinstance(self.start, _Straight) or not expect_straight
        else:
            tracer = self.tracer

            def public(name: str, attributes: Mapping[str, str], context: Any = None) -> Any:
                return tracer.start_span(name, context=context, attributes=attributes)

            self.start = public

    def points(self) -> dict[tuple[str, frozenset[Any]], Any]:
        data = self.reader.get_metrics_data()
        found: dict[tuple[str, frozenset[Any]], Any] = {}
        for resource_metrics in data.resource_metrics if data else ():
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name in (STARTED, LIVE):
                        for point in metric.data.data_points:
                            found[metric.name, frozenset((point.attributes or {}).items())] = (
                                point.value)
        return found

    def exported(self) -> list[dict[str, Any]]:
        return [_fields(span) for span in self.exporter.get_finished_spans()]


def _twins(**kwargs: Any) -> tuple[_Side, _Side]:
    return _Side(True, **kwargs), _Side(False, **kwargs)


def _fields(span: ReadableSpan) -> dict[str, Any]:
    """Everything exported but the span's own start and end times; attributes in their order."""
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= span.end_time
    fields: dict[str, Any] = json.loads(span.to_json())
    del fields["start_time"], fields["end_time"]
    fields["attribute_order"] = list(span.attributes or {})
    fields["dropped"] = (span.dropped_attributes, span.dropped_events, span.dropped_links)
    fields["flags"] = int(span.context.trace_flags)
    fields["parent_flags"] = None if span.parent is None else int(span.parent.trace_flags)
    fields["parent_remote"] = None if span.parent is None else span.parent.is_remote
    return fields


def _live(span: Any) -> tuple[Any, ...]:
    """What the caller holds: the span's class, whether it records, its whole context."""
    context = span.get_span_context()
    return (type(span), span.is_recording(), context, int(context.trace_flags),
            context.trace_state)


def _exercise(span: Any, long_value: str, end: Callable[[Any], None] = lambda span: span.end()
              ) -> None:
    """What a user does to a span, then its end (the SDK's, or aurum-otel's ``end_span``)."""
    span.set_attribute("user.key", long_value)
    span.set_attributes({"user.n": 3, "user.bad": None})  # type: ignore[dict-item]
    span.add_event("e", {"a": 1, "b": long_value}, timestamp=5)
    span.add_event("f", timestamp=6)
    span.add_link(SpanContext(0xABC, 0xDEF, True, TraceFlags(1)), {"l": "v"})
    span.record_exception(ValueError("bad"), {"extra": "x"}, timestamp=7)
    span.set_status(StatusCode.ERROR, "boom")
    span.update_name("renamed")
    end(span)


# ------------------------------------------------------------------ the contract, at random

_BASE = st.sampled_from([ALWAYS_ON, ALWAYS_OFF, StaticSampler(Decision.RECORD_ONLY),
                         TraceIdRatioBased(0.5), TraceIdRatioBased(0.0), TraceIdRatioBased(1.0)])
_SAMPLERS = st.one_of(
    _BASE,
    st.sampled_from([DEFAULT_ON, DEFAULT_OFF, ParentBasedTraceIdRatio(0.5)]),
    st.builds(ParentBased, _BASE, _BASE, _BASE, _BASE, _BASE),
)
_STATE = st.sampled_from([TraceState(), TraceState([("vendor", "v"), ("other", "w")])])


@st.composite
def _parents(draw: st.DrawFn) -> SpanContext | None:
    kind = draw(st.sampled_from(["none", "invalid", "remote", "local"]))
    if kind == "none":
        return None
    if kind == "invalid":
        return INVALID_SPAN.get_span_context()
    flags = ((TraceFlags.SAMPLED if draw(st.booleans()) else 0)
             | (TraceFlags.RANDOM_TRACE_ID if draw(st.booleans()) else 0))
    return SpanContext(draw(st.integers(1, 2**128 - 1)), draw(st.integers(1, 2**64 - 1)),
                       kind == "remote", TraceFlags(flags), draw(_STATE))


_LIMITS = st.builds(
    SpanLimits,
    max_span_attributes=st.sampled_from([None, 0, 1, 3, 4, 5, 8]),
    max_span_attribute_length=st.sampled_from([None, 0, 3, 62, 63, 200]),
    max_events=st.sampled_from([None, 0, 1, 2]),
    max_links=st.sampled_from([None, 0, 1]),
    max_event_attributes=st.sampled_from([None, 1]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler=_SAMPLERS, parent=_parents(), limits=_LIMITS, seed=st.integers(0, 2**32),
       random_ids=st.booleans(), long_value=st.sampled_from(["v", "x" * 100]))
def test_a_straight_span_is_what_the_sdks_start_span_gives(
        sampler: Sampler, parent: SpanContext | None, limits: SpanLimits, seed: int,
        random_ids: bool, long_value: str) -> None:
    straight, public = _twins(sampler=sampler, limits=limits, seed=seed, random_ids=random_ids,
                              expect_straight=False)
    context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
    spans = []
    for side in (straight, public):
        side.seen.context = context
        span = side.start("migrate orders", ATTRIBUTES, context)
        spans.append(span)
    assert _live(spans[0]) == _live(spans[1])
    assert straight.points() == public.points()  # started and live, while the span runs
    for span, end in zip(spans, (end_span, lambda span: span.end()), strict=True):
        _exercise(span, long_value, end)  # the straight span ended straight
        end(span)  # twice: a warning, nothing more
    assert straight.exported() == public.exported()
    assert straight.points() == public.points()
    assert all(value == 0 for (name, _), value in straight.points().items() if name == LIVE)
    assert straight.seen.ended == public.seen.ended
    assert [s[0] for s in straight.seen.started] == [s[0] for s in public.seen.started]
    assert all(s[2] for s in straight.seen.started)  # on_start got the caller's context


@settings(max_examples=60, deadline=None)
@given(sampler=_SAMPLERS, parent=_parents(), seed=st.integers(0, 2**32))
def test_processors_see_at_start_what_the_sdk_shows_them(
        sampler: Sampler, parent: SpanContext | None, seed: int) -> None:
    """Default limits: what on_start sees (aurum-otel's attributes included) is the SDK's."""
    straight, public = _twins(sampler=sampler, seed=seed)
    context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
    for side in (straight, public):
        side.seen.context = context
        side.start("migrate orders", ATTRIBUTES, context).end()
    assert straight.seen.started == public.seen.started


# ------------------------------------------------------------------ divergences found (bugs)


def test_a_resource_the_provider_updates_is_on_the_next_straight_span() -> None:
    straight, public = _twins()
    for side in (straight, public):
        side.provider._update_resource(Resource({"service.instance.id": "after"}))
        side.start("migrate orders", ATTRIBUTES, None).end()
    (mine,), (theirs,) = (s.exporter.get_finished_spans() for s in (straight, public))
    assert theirs.resource.attributes["service.instance.id"] == "after"
    assert mine.resource.attributes["service.instance.id"] == "after"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_worker_straight_span_has_the_workers_service_instance_id() -> None:
    """A pre-forking server (gunicorn): the SDK gives each worker its own service.instance.id;
    aurum-otel's spans must carry it, as the user's own spans in the same worker do."""
    side = _Side(True, resource=Resource.create({"service.name": "svc"}))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ours = side.start("migrate orders", ATTRIBUTES, None)
            users = side.tracer.start_span("user")
            os.write(write, json.dumps([ours.resource.attributes["service.instance.id"],
                                        users.resource.attributes["service.instance.id"]]
                                       ).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        ours, users = json.loads(pipe.read())
    parents = side.provider.resource.attributes["service.instance.id"]
    assert users != parents  # the SDK's own: a new instance in the worker
    assert ours == users



@pytest.mark.parametrize("limits", [SpanLimits(max_span_attributes=2),
                                    SpanLimits(max_span_attribute_length=10)],
                         ids=["few-attributes", "short-values"])
def test_under_span_limits_processors_see_the_attributes_at_start(limits: SpanLimits) -> None:
    straight, public = _twins(limits=limits)
    for side in (straight, public):
        side.start("migrate orders", ATTRIBUTES, None).end()
    assert public.seen.started[0][1]  # the SDK shows them, within the limits
    assert straight.seen.started == public.seen.started
    assert straight.exported() == public.exported()




def test_a_sampler_put_on_the_tracer_later_sees_aurum_otels_attributes() -> None:
    straight, public = _twins()
    for side in (straight, public):
        side.tracer.sampler = _ReadingSampler()
        side.start("migrate orders", ATTRIBUTES, None).end()
    assert public.tracer.sampler.seen == [ATTRIBUTES]  # type: ignore[attr-defined]
    assert straight.tracer.sampler.seen == [ATTRIBUTES]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the SDK's own behaviours


def test_internal_metrics_count_straight_spans_as_the_sdks_and_live_goes_back_down() -> None:
    straight, public = _twins(sampler=ParentBased(TraceIdRatioBased(0.5)))
    remote = SpanContext(0x1234, 0x5678, True, TraceFlags(TraceFlags.SAMPLED))
    contexts = [None, trace.set_span_in_context(NonRecordingSpan(remote))]
    held: dict[bool, list[Any]] = {True: [], False: []}
    for side in (straight, public):
        for i in range(40):
            held[side.straight].append(side.start("s", ATTRIBUTES, contexts[i % 2]))
    mine, theirs = straight.points(), public.points()
    assert mine == theirs
    assert sum(v for (name, _), v in mine.items() if name == STARTED) == 40
    assert sum(v for (name, _), v in mine.items() if name == LIVE) > 20  # the remote ones at least
    for spans in held.values():
        for span in spans:
            span.end()
    assert straight.points() == public.points()
    assert {v for (name, _), v in straight.points().items() if name == LIVE} == {0}


def test_many_threads_starting_and_ending_straight_spans() -> None:
    side = _Side(True, seed=3)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        try:
            barrier.wait()
            spans = [side.start("s", ATTRIBUTES, None) for _ in range(150)]
            for span in spans:
                span.end()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    finished = side.exporter.get_finished_spans()
    assert len(finished) == 1200
    assert len({span.context.span_id for span in finished}) == 1200
    assert all(dict(span.attributes or {}) == ATTRIBUTES for span in finished)
    counts = side.points()
    assert sum(v for (name, _), v in counts.items() if name == STARTED) == 1200
    assert {v for (name, _), v in counts.items() if name == LIVE} == {0}


def test_a_straight_span_ended_on_another_thread_and_twice(
        caplog: pytest.LogCaptureFixture) -> None:
    straight, public = _twins()
    for side in (straight, public):
        span = side.start("s", ATTRIBUTES, None)
        ender = threading.Thread(target=span.end)
        ender.start()
        ender.join()
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            span.end()
            span.set_attribute("late", "x")
        assert [r.getMessage() for r in caplog.records] == [
            "Calling end() on an ended span.", "Setting attribute on ended span."]
    assert straight.exported() == public.exported()
    assert straight.points() == public.points()
    assert {v for (name, _), v in straight.points().items() if name == LIVE} == {0}


def test_use_span_records_the_exception_on_a_straight_span_as_on_the_sdks() -> None:
    straight, public = _twins()
    for side in (straight, public):
        span = side.start("s", ATTRIBUTES, None)
        with pytest.raises(KeyError), trace.use_span(span, end_on_exit=True,
                                                     record_exception=True):
            raise KeyError("missing")
    (mine,), (theirs,) = straight.exported(), public.exported()
    for fields in (mine, theirs):  # the stack traces differ by the line that raised
        for event in fields["events"]:
            event["attributes"].pop("exception.stacktrace")
            event.pop("timestamp")
    assert mine == theirs
    assert mine["status"]["status_code"] == "ERROR"
    assert [e["name"] for e in mine["events"]] == ["exception"]


def test_starting_after_the_provider_shut_down_does_what_the_sdk_does() -> None:
    straight, public = _twins()
    outcomes = []
    for side in (straight, public):
        side.provider.shutdown()
        span = side.start("s", ATTRIBUTES, None)
        span.end()
        outcomes.append((_live(span)[1:2], len(side.exporter.get_finished_spans()),
                         side.seen.ended))
    assert outcomes[0] == outcomes[1]


def test_a_concurrent_multi_span_processor_sees_straight_spans_as_sdk_ones() -> None:
    processors = ConcurrentMultiSpanProcessor(2), ConcurrentMultiSpanProcessor(2)
    straight, public = _Side(True, processor=processors[0]), _Side(False, processor=processors[1])
    for side in (straight, public):
        side.start("s", ATTRIBUTES, None).end()
    assert straight.exported() == public.exported()
    assert straight.seen.started == public.seen.started == [("s", ATTRIBUTES, True)]
    for processor in processors:
        processor.shutdown()


class _Mutating(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        span.set_attribute("added.at.start", "yes")
        span.set_attribute(semconv.ATTR_OUTCOME, "overridden")
        span.update_name(span.name + "!")
        span.add_event("started", timestamp=1)


def test_a_processor_that_changes_the_span_at_start_changes_a_straight_one_alike() -> None:
    straight, public = _twins()
    for side in (straight, public):
        side.provider._active_span_processor._span_processors = (  # mutate first
            _Mutating(), *side.provider._active_span_processor._span_processors)
        side.start("s", ATTRIBUTES, None).end()
    assert straight.exported() == public.exported()
    (fields,) = straight.exported()
    assert fields["name"] == "s!" and fields["attributes"][semconv.ATTR_OUTCOME] == "overridden"


def _how(action: Callable[[Any], Any], span: Any) -> tuple[str, str]:
    try:
        result = action(span)
    except Exception as exc:  # the kind of failure, which must be the SDK's
        return "raised", type(exc).__name__
    return "returned", type(result).__name__


def test_copy_pickle_and_repr_of_a_straight_span_are_the_sdks() -> None:
    straight, public = _twins()
    spans = [side.start("s", ATTRIBUTES, None) for side in (straight, public)]
    for action in (copy.copy, copy.deepcopy, pickle.dumps):
        assert _how(action, spans[0]) == _how(action, spans[1]), action
    assert repr(spans[0]).split("context=")[0] == repr(spans[1]).split("context=")[0]
    assert repr(spans[0]) == f'_Span(name="s", context={spans[0].get_span_context()})'
    assert _live(spans[0]) == _live(spans[1])


# ------------------------------------------------------------------ end to end, through @migrated


def _migrated_spans(tmp_path: Path, phase: Phase) -> list[dict[str, Any]]:
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", phase, Rollout(percent=50, compare=100)
                     if phase is Phase.HYBRID else None, actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated("orders", key=lambda user: user)
        def load(user: str) -> str:
            if user == "boom":
                raise LookupError(user)
            return "legacy"

        @load.simplified
        def _load(user: str) -> str:
            return "simplified" if user == "differs" else "legacy"

        for user in ("alice", "bob", "carol", "differs", "dave", "boom"):
            try:
                load(user)
            except LookupError:
                pass
        telemetry.wait_for_shadows()
        spans = telemetry.spans()
    names = {span.context.span_id: span.name for span in spans}
    out = []
    for span in spans:  # ids and times aside: the parent by its name, the rest as exported
        fields = _fields(span)
        del fields["context"], fields["parent_id"]
        fields["parent_name"] = None if span.parent is None else names.get(span.parent.span_id)
        for event in fields["events"]:
            event.pop("timestamp")
            event["attributes"].pop("exception.stacktrace", None)
        fields["links"] = len(fields["links"])
        out.append(fields)
    return sorted(out, key=lambda f: json.dumps(f, sort_keys=True))


@pytest.mark.parametrize("phase", [Phase.LEGACY, Phase.HYBRID])
def test_migrated_spans_export_what_they_did_before_the_straight_start(
        tmp_path: Path, phase: Phase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_CONTEXT_ID_SECRET", "same for both runs")  # else random per run
    made: list[Any] = []
    original = straight_module._straight

    def watching(tracer: Any) -> Any:
        made.append(original(tracer))
        return made[-1]

    monkeypatch.setattr(straight_module, "_straight", watching)
    after = _migrated_spans(tmp_path / "after", phase)
    assert made and all(isinstance(s, _Straight) for s in made)  # the straight start ran
    monkeypatch.setattr(straight_module, "_straight", lambda tracer: None)
    before = _migrated_spans(tmp_path / "before", phase)
    assert len(after) == len(before) >= 6
    assert after == before

"""Exemplars on the comparisons counter: a point links to the trace of a comparison behind it.

The counter stays an observable one fed by the lock-free aggregator; each comparison recorded
with a sampled span leaves that span's ids, which the next collection hands to the SDK's
exemplar reservoir (the trace-based filter, the SDK's default).
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, Role
from aurum_otel.telemetry import semconv
from aurum_otel.telemetry.instruments import Instruments


def points(reader: InMemoryMetricReader, metric: str) -> dict[str, Any]:
    """The ``metric``'s points of the next collection, keyed by their comparison result."""
    found: dict[str, Any] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for collected in scope.metrics:
                if collected.name == metric:
                    for point in collected.data.data_points:
                        key = point.attributes.get(semconv.ATTR_COMPARISON) or point.attributes.get(
                            semconv.ATTR_OUTCOME)
                        found[str(key)] = point
    return found


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def instruments(reader: InMemoryMetricReader) -> Instruments:
    return Instruments(TracerProvider(), MeterProvider(metric_readers=[reader]))


def test_a_comparison_recorded_with_its_span_carries_the_span_ids(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    span = instruments.tracer.start_span("shadow lookup")
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=span)
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MATCH)  # no span: no link
    span.end()

    found = points(reader, semconv.METRIC_COMPARISONS)

    mismatch = found[Comparison.MISMATCH.value]
    assert mismatch.value == 1
    assert len(mismatch.exemplars) == 1
    exemplar = mismatch.exemplars[0]
    assert exemplar.trace_id == span.get_span_context().trace_id
    assert exemplar.span_id == span.get_span_context().span_id
    assert found[Comparison.MATCH.value].value == 1
    assert found[Comparison.MATCH.value].exemplars == []
    # health reads the same counts, in process
    counts = instruments.aggregator.comparisons()
    assert counts[("lookup", Phase.HYBRID, Comparison.MISMATCH)] == 1


def test_the_latest_sampled_comparison_is_the_exemplar(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    first = instruments.tracer.start_span("shadow lookup")
    second = instruments.tracer.start_span("shadow lookup")
    for span in (first, second):
        instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=span)

    mismatch = points(reader, semconv.METRIC_COMPARISONS)[Comparison.MISMATCH.value]

    assert mismatch.value == 2
    assert [e.trace_id for e in mismatch.exemplars] == [second.get_span_context().trace_id]


def test_an_unsampled_span_neither_links_nor_hides_the_last_sampled_one(
        reader: InMemoryMetricReader) -> None:
    meters = MeterProvider(metric_readers=[reader])
    instruments = Instruments(TracerProvider(), meters)
    sampled = instruments.tracer.start_span("shadow lookup")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("shadow lookup")
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=sampled)
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=unsampled)

    mismatch = points(reader, semconv.METRIC_COMPARISONS)[Comparison.MISMATCH.value]

    assert mismatch.value == 2
    assert [e.trace_id for e in mismatch.exemplars] == [sampled.get_span_context().trace_id]


def test_without_a_span_the_current_one_links(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    with instruments.tracer.start_as_current_span("request") as current:
        instruments.record_comparison("lookup", Phase.HYBRID, Comparison.TIMEOUT)

    timeout = points(reader, semconv.METRIC_COMPARISONS)[Comparison.TIMEOUT.value]

    assert [e.span_id for e in timeout.exemplars] == [current.get_span_context().span_id]


def test_reset_forgets_the_links_with_the_counts(reader: InMemoryMetricReader) -> None:
    meters = MeterProvider(metric_readers=[reader])
    old = Instruments(TracerProvider(), meters)
    span = old.tracer.start_span("shadow lookup")
    old.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=span)
    fresh = Instruments(TracerProvider(), meters)  # what reset() makes for the same provider
    fresh.record_comparison("lookup", Phase.HYBRID, Comparison.MATCH)

    found = points(reader, semconv.METRIC_COMPARISONS)

    assert Comparison.MISMATCH.value not in found
    assert found[Comparison.MATCH.value].exemplars == []


def test_the_link_keeps_no_span_alive(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    span = instruments.tracer.start_span("shadow lookup")
    trace_id = span.get_span_context().trace_id
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MISMATCH, span=span)
    span.end()
    gone = weakref.ref(span)
    del span
    gc.collect()

    assert gone() is None
    mismatch = points(reader, semconv.METRIC_COMPARISONS)[Comparison.MISMATCH.value]
    assert [e.trace_id for e in mismatch.exemplars] == [trace_id]


def test_calls_stay_on_the_hot_path_without_links(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    with trace.use_span(instruments.tracer.start_span("migrate lookup"), end_on_exit=True):
        instruments.record_call("lookup", Phase.HYBRID, Implementation.LEGACY,
                                Role.AUTHORITATIVE, Outcome.SUCCESS, 0.001)

    found = points(reader, semconv.METRIC_CALLS)

    assert found[Outcome.SUCCESS.value].value == 1
    assert found[Outcome.SUCCESS.value].exemplars == []  # calls: counted, never linked


def test_a_collection_inside_a_span_links_nothing_to_it(
        instruments: Instruments, reader: InMemoryMetricReader) -> None:
    instruments.record_comparison("lookup", Phase.HYBRID, Comparison.MATCH)
    instruments.record_call("lookup", Phase.HYBRID, Implementation.LEGACY,
                            Role.AUTHORITATIVE, Outcome.SUCCESS, 0.001)

    with instruments.tracer.start_as_current_span("flush"):  # e.g. a force_flush in a request
        comparisons = points(reader, semconv.METRIC_COMPARISONS)
        calls = points(reader, semconv.METRIC_CALLS)

    assert comparisons[Comparison.MATCH.value].exemplars == []
    assert calls[Outcome.SUCCESS.value].exemplars == []

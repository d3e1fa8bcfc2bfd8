"""Emulations of the hot-path changes proposed in BENCHMARKS.md, to measure what they would buy.

Not aurum-otel code and not a drop-in: each function below does, by hand, what a routed call would
do after the change, with the same tracer, providers, attribute names, routing (the real
``MigrationRuntime.resolved()`` and ``decide()``), wrapt dispatch and shadow executor type, so
the figures are comparable with the current implementation's.
"""

from __future__ import annotations

import copy
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

import wrapt
from opentelemetry import context, trace
from opentelemetry.metrics import CallbackOptions, Observation

from aurum_otel import semconv
from aurum_otel.compare import deep_compare
from aurum_otel.phase import Implementation
from aurum_otel.router import decide
from aurum_otel.shadow import ShadowExecutor

_clock = time.perf_counter


class Aggregator:
    """Per-thread, lock-free counts, sums and duration buckets per attribute-set key, merged at
    collection time and exported through an ObservableCounter (``calls``). The duration histogram
    would come from the same cells (in-process health) and, for Prometheus, from the spans
    (the collector's spanmetrics connector)."""

    def __init__(self, meter: Any, bounds: Iterable[float], attributes: dict[Any, dict[str, str]],
                 name: str = "whatif.migration.calls") -> None:
        self.bounds = tuple(bounds)
        self.attributes = attributes  # key -> attribute set, built once
        self._local = threading.local()
        self._shards: list[dict[Any, list[Any]]] = []
        self._lock = threading.Lock()
        meter.create_observable_counter(name, callbacks=[self._observe], unit="{call}")

    def _shard(self) -> dict[Any, list[Any]]:
        shard: dict[Any, list[Any]] = {}
        self._local.shard = shard
        with self._lock:
            self._shards.append(shard)
        return shard

    def record(self, key: Any, seconds: float) -> None:
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._shard()
        cell = shard.get(key)
        if cell is None:
            cell = shard[key] = [0, 0.0, [0] * (len(self.bounds) + 1)]
        cell[0] += 1
        cell[1] += seconds
        cell[2][bisect_left(self.bounds, seconds)] += 1

    def count(self, key: Any) -> None:
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._shard()
        cell = shard.get(key)
        if cell is None:
            cell = shard[key] = [0, 0.0, [0] * (len(self.bounds) + 1)]
        cell[0] += 1

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[Any, int] = {}
        with self._lock:
            shards = list(self._shards)
        for shard in shards:
            for key, cell in list(shard.items()):
                totals[key] = totals.get(key, 0) + cell[0]
        return [Observation(total, self.attributes.get(key, {})) for key, total in totals.items()]


def legacy_phase(fn: Callable[..., Any], router: Any, aggregator: Aggregator) -> Callable[..., Any]:
    """A routed call with: one cached attribute set at span start (phase_source included), no
    feature-flag event where the phase is fixed (legacy/simplified), outcome the only attribute set
    at the end, and metrics into the in-process aggregator instead of the SDK counter + histogram."""
    router.bind()
    runtime, name, rand = router.runtime, router.name, router.rand
    tracer = router.instruments.tracer
    span_name = router.span_name
    attach, detach, in_context = context.attach, context.detach, trace.set_span_in_context
    attributes: dict[tuple[Any, ...], dict[str, str]] = {}

    def start_attributes(phase: Any, implementation: Any, source: str) -> dict[str, str]:
        key = (phase, implementation, source)
        found = attributes.get(key)
        if found is None:
            found = attributes[key] = {
                semconv.ATTR_NAME: name, semconv.ATTR_PHASE: phase.value,
                semconv.ATTR_IMPLEMENTATION: implementation.value,
                semconv.ATTR_PHASE_SOURCE: source,
            }
        return found

    def shell(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        state = runtime.resolved().state
        decision = decide(state, name=name, key=None, rand=rand)
        implementation = decision.authoritative
        span = tracer.start_span(span_name, attributes=start_attributes(
            decision.phase, implementation, state.source))
        token = attach(in_context(span))
        started = _clock()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            aggregator.record((decision.phase, implementation, "error"), _clock() - started)
            span.set_attribute(semconv.ATTR_OUTCOME, "error")
            span.end()
            detach(token)
            raise
        aggregator.record((decision.phase, implementation, "success"), _clock() - started)
        span.set_attribute(semconv.ATTR_OUTCOME, "success")
        span.end()
        detach(token)
        return result

    return wrapt.FunctionWrapper(fn, shell)


_ATOMIC = (int, float, str, bytes, bool, type(None))


def _immutable(value: Any) -> bool:
    kind = type(value)
    if kind in _ATOMIC:
        return True
    if kind is tuple:
        return all(_immutable(item) for item in value)
    return False


def strict_equal(left: Any, right: Any) -> bool:
    """deep_compare's verdict without building difference strings (``False`` → run deep_compare
    for the report)."""
    lt, rt = type(left), type(right)
    if lt is dict and rt is dict:
        return left.keys() == right.keys() and all(strict_equal(left[k], right[k]) for k in left)
    if lt in (list, tuple) and rt in (list, tuple):
        return len(left) == len(right) and all(map(strict_equal, left, right))
    if lt is rt and lt in _ATOMIC:
        return bool(left == right) or (lt is float and left != left and right != right)
    if lt in (int, float) and rt in (int, float):
        return bool(left == right)
    return deep_compare(left, right).equal


def hybrid(fn: Callable[..., Any], simplified: Callable[..., Any], router: Any,
           aggregator: Aggregator, executor: ShadowExecutor) -> Callable[..., Any]:
    """Hybrid (compare 100) with the legacy-phase changes plus: no copy for immutable arguments, a
    string-free equality check first (deep_compare only on a difference), and a shadow span only
    when the comparison is not a match (a match is a counter increment)."""
    router.bind()
    runtime, name, rand = router.runtime, router.name, router.rand
    tracer = router.instruments.tracer
    span_name, shadow_span_name = router.span_name, router.shadow_span_name
    attach, detach, in_context = context.attach, context.detach, trace.set_span_in_context
    base = {semconv.ATTR_NAME: name}

    def shell(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        state = runtime.resolved().state
        decision = decide(state, name=name, key=None, rand=rand)
        payload = (args, kwargs) if not kwargs and _immutable(args) else copy.deepcopy((args, kwargs))
        span = tracer.start_span(span_name, attributes={
            **base, semconv.ATTR_PHASE: decision.phase.value,
            semconv.ATTR_IMPLEMENTATION: decision.authoritative.value,
            semconv.ATTR_PHASE_SOURCE: state.source,
        })
        span.add_event(semconv.EVENT_FEATURE_FLAG, {  # hybrid: the variant is per call
            semconv.ATTR_FF_KEY: f"aurum.migration.{name}.phase",
            semconv.ATTR_FF_VARIANT: decision.phase.value,
            semconv.ATTR_FF_PROVIDER: semconv.FF_PROVIDER,
        })
        token = attach(in_context(span))
        started = _clock()
        result = wrapped(*args, **kwargs)
        aggregator.record((decision.phase, decision.authoritative, "success"), _clock() - started)
        span.set_attribute(semconv.ATTR_OUTCOME, "success")
        span.end()
        detach(token)
        if decision.shadow is Implementation.SIMPLIFIED:
            theirs = result if _immutable(result) else copy.deepcopy(result)
            shadow_args, shadow_kwargs = payload

            def job() -> None:
                t0 = _clock()
                try:
                    value, error = simplified(*shadow_args, **shadow_kwargs), None
                except Exception as exc:
                    value, error = None, exc
                aggregator.record((decision.phase, "shadow", "error" if error else "success"),
                                  _clock() - t0)
                if error is None and strict_equal(theirs, value):
                    aggregator.count((decision.phase, "match"))
                    return
                aggregator.count((decision.phase, "mismatch"))
                shadow = tracer.start_span(shadow_span_name, context=in_context(span))
                shadow.set_attribute(semconv.ATTR_COMPARISON, "mismatch")
                shadow.end()

            executor.submit(job)
        return result

    return wrapt.FunctionWrapper(fn, shell)


def hybrid_parallel(fn: Callable[..., Any], simplified: Callable[..., Any], router: Any,
                    aggregator: Aggregator, executor: ShadowExecutor) -> Callable[..., Any]:
    """Like :func:`hybrid`, but the shadow is handed to the worker *before* the authoritative runs
    (LaunchDarkly's ``ExecutionOrder.PARALLEL``, off the caller's thread): it runs concurrently
    and waits for the authoritative result (an Event, bounded by the shadow timeout) only to
    compare, so its work is done while the caller is still busy, not when the caller wakes up."""
    router.bind()
    runtime, name, rand = router.runtime, router.name, router.rand
    tracer = router.instruments.tracer
    span_name = router.span_name
    timeout = router.options.shadow_timeout
    attach, detach, in_context = context.attach, context.detach, trace.set_span_in_context
    base = {semconv.ATTR_NAME: name}

    def shell(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        state = runtime.resolved().state
        decision = decide(state, name=name, key=None, rand=rand)
        slot: list[Any] = [None]
        ready = threading.Event()
        if decision.shadow is Implementation.SIMPLIFIED:
            shadow_args, shadow_kwargs = (
                (args, kwargs) if not kwargs and _immutable(args) else copy.deepcopy((args, kwargs))
            )

            def job() -> None:
                t0 = _clock()
                try:
                    value, error = simplified(*shadow_args, **shadow_kwargs), None
                except Exception as exc:
                    value, error = None, exc
                aggregator.record((decision.phase, "shadow", "error" if error else "success"),
                                  _clock() - t0)
                if not ready.wait(timeout):
                    aggregator.count((decision.phase, "timeout"))
                    return
                equal = error is None and strict_equal(slot[0], value)
                aggregator.count((decision.phase, "match" if equal else "mismatch"))

            executor.submit(job)
        span = tracer.start_span(span_name, attributes={
            **base, semconv.ATTR_PHASE: decision.phase.value,
            semconv.ATTR_IMPLEMENTATION: decision.authoritative.value,
            semconv.ATTR_PHASE_SOURCE: state.source,
        })
        token = attach(in_context(span))
        started = _clock()
        result = wrapped(*args, **kwargs)
        aggregator.record((decision.phase, decision.authoritative, "success"), _clock() - started)
        span.set_attribute(semconv.ATTR_OUTCOME, "success")
        span.end()
        detach(token)
        slot[0] = result if _immutable(result) else copy.deepcopy(result)
        ready.set()
        return result

    return wrapt.FunctionWrapper(fn, shell)


def monitoring_off_fast_path(fn: Callable[..., Any], router: Any) -> Callable[..., Any]:
    """wrapt's ``enabled=`` hook: a cheap check, cached per refresh interval, that skips the
    wrapper altogether when monitoring is off and legacy serves every call."""
    router.bind()
    runtime = router.runtime
    clock = router.runtime._registry.clock
    cache = {"until": -1.0, "bypass": False}

    def enabled() -> bool:
        if clock() < cache["until"]:
            return not cache["bypass"]
        resolved = runtime.resolved()
        cache["bypass"] = not resolved.monitoring and resolved.state.phase.value == "legacy"
        cache["until"] = runtime._next_refresh
        return not cache["bypass"]

    def shell(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        return wrapped(*args, **kwargs)

    return wrapt.FunctionWrapper(fn, shell, enabled=enabled)

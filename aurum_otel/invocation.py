"""One routed call and its shadow, carried out by the sync and async shells of ``@migrated``.

The shells only call the target and hand back what happened; everything else (spans, metrics,
fallback, the shadow's comparison) happens here once for both.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import time
from collections.abc import Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from aurum_otel import semconv
from aurum_otel.compare import ComparisonResult, as_result
from aurum_otel.hooks import MismatchReport, call_hook
from aurum_otel.phase import Comparison, Implementation, Outcome, PhaseState, Role
from aurum_otel.router import Decision
from aurum_otel.shadow import Offer

if TYPE_CHECKING:
    from aurum_otel.migrated import Router

logger = logging.getLogger("aurum_otel")
mismatch_logger = logging.getLogger("aurum_otel.mismatch")

_clock = time.perf_counter


def error_type(error: BaseException) -> str:
    """The fully qualified class name of an exception (``error.type``)."""
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class Invocation:
    """The life of one routed call: start, maybe fall back, end; then hand off the shadow."""

    __slots__ = (
        "_args", "_instance", "_kwargs", "_outcome", "_shadow_args", "_span", "_started",
        "_tags_pending", "_token", "_wrapped", "decision", "implementation", "instruments",
        "is_async", "monitored", "router", "state",
    )

    def __init__(
        self, router: Router, decision: Decision, state: PhaseState, wrapped: Callable[..., Any],
        instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, monitored: bool,
        is_async: bool,
    ) -> None:
        self.router = router
        # Where this call is recorded, fixed at its start (a configure() may rebind the router).
        self.instruments = router.instruments
        self.decision = decision
        self.state = state
        self.monitored = monitored
        self.is_async = is_async
        self.implementation = decision.authoritative
        self._wrapped = wrapped
        self._instance = instance
        self._args = args
        self._kwargs = kwargs
        self._outcome = Outcome.SUCCESS
        self._span: Span | None = None
        self._token: Token[Context] | None = None
        self._shadow_args: tuple[bool, Any] | None = None
        self._tags_pending = False

    def start(self) -> Callable[..., Any]:
        """Open the span and return the authoritative target to call."""
        router, decision = self.router, self.decision
        if decision.shadow is not None:
            # Copied before the authoritative runs, so its mutations cannot reach the shadow.
            self._shadow_args = (
                _try_copy_inputs(self._args, self._kwargs) if router.options.copy_args
                else (True, (self._args, self._kwargs))
            )
        if self.monitored:
            instruments = self.instruments
            # With a sync shadow, the call is usually closed by a shadow worker: the outcome and
            # the feature-flag event (stamped with the start time) are added then, off the
            # caller's path. Routing attributes are always set at the start, for samplers.
            self._tags_pending = decision.shadow is not None and not self.is_async
            span = instruments.tracer.start_span(
                router.span_name,
                attributes=instruments.span_attributes(
                    router.name, decision.phase, self.implementation, self.state.source,
                    outcome=not self._tags_pending,
                ),
            )
            if span.is_recording():
                if not self._tags_pending:
                    instruments.add_feature_flag_event(span, router.name, decision.phase)
                if self.state.problem:
                    span.set_attribute(semconv.ATTR_CONFIG_ERROR, self.state.problem)
            self._span = span
            self._token = context.attach(trace.set_span_in_context(span))
        self._started = _clock()
        return router.target(self.implementation, self._wrapped, self._instance)

    def failed(self, error: BaseException) -> Callable[..., Any]:
        """The authoritative raised: return the fallback target, or end the call and re-raise."""
        elapsed = _clock() - self._started
        if not isinstance(error, Exception):
            # Cancelled or interrupted (asyncio cancellation, KeyboardInterrupt): the caller
            # abandoned the call, which says nothing of the implementation, so it is neither
            # counted nor shadowed; its span ends with the error.
            self._detach()
            self._end(Outcome.ERROR, elapsed, error, counted=False)
            raise error
        if (
            self.decision.fallback
            and self.implementation is Implementation.SIMPLIFIED
            and isinstance(error, Exception)
        ):
            self._record(Implementation.SIMPLIFIED, Outcome.ERROR, elapsed)
            if self._span is not None and self._span.is_recording():
                self._add_pending_event(self._span)
                self._span.add_event(
                    "aurum.migration.fallback", {semconv.ATTR_ERROR_TYPE: error_type(error)}
                )
                self._span.set_attribute(semconv.ATTR_IMPLEMENTATION, Implementation.LEGACY.value)
            call_hook(self.router.options.hooks, "on_fallback", self.router.name, error)
            self.implementation = Implementation.LEGACY
            self._outcome = Outcome.FALLBACK
            self._shadow_args = None  # legacy has served; there is nothing left to compare
            self._started = _clock()
            return self.router.target(Implementation.LEGACY, self._wrapped, self._instance)
        self._detach()
        self._end(Outcome.ERROR, elapsed, error)
        self._hand_off_shadow(None, error)
        raise error

    def succeeded(self, value: Any) -> Any:
        elapsed = _clock() - self._started
        self._detach()
        if self._shadow_args is not None and not self.is_async:
            # The shadow's job closes this call's span (with this end time) and counts the call
            # before it runs the shadow, if a worker starts it at once; otherwise the caller does.
            self._hand_off_shadow(value, None, closing=elapsed)
        else:
            self._end(self._outcome, elapsed, None)
            self._hand_off_shadow(value, None)
        return value

    def close(self, elapsed: float) -> None:
        """Count and close a successful call whose end was handed to a shadow worker.

        The span ends ``elapsed`` after it started: its duration is the one the call counted.
        """
        start_time: int | None = getattr(self._span, "start_time", None)
        end_time = None if start_time is None else start_time + int(elapsed * 1e9)
        self._end(Outcome.SUCCESS, elapsed, None, end_time)

    def _detach(self) -> None:
        if self._token is not None:
            context.detach(self._token)
            self._token = None

    def _end(self, outcome: Outcome, elapsed: float, error: BaseException | None,
             end_time: int | None = None, *, counted: bool = True) -> None:
        if counted:
            self._record(self.implementation, outcome, elapsed)
        span = self._span
        if span is None:
            return
        if (outcome is not Outcome.SUCCESS or self._tags_pending) and span.is_recording():
            self._add_pending_event(span)
            span.set_attribute(semconv.ATTR_OUTCOME, outcome.value)
            if error is not None:
                span.set_attribute(semconv.ATTR_ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end(end_time)

    def _add_pending_event(self, span: Span) -> None:
        if self._tags_pending:
            self._tags_pending = False
            self.instruments.add_feature_flag_event(
                span, self.router.name, self.decision.phase,
                timestamp=getattr(span, "start_time", None),
            )

    def _record(self, implementation: Implementation, outcome: Outcome, elapsed: float) -> None:
        if self.monitored:
            self.instruments.record_call(
                self.router.name, self.decision.phase, implementation, Role.AUTHORITATIVE,
                outcome, elapsed,
            )

    def _hand_off_shadow(self, value: Any, error: BaseException | None,
                         closing: float | None = None) -> None:
        if self._shadow_args is None or self.decision.shadow is None:
            return
        copied, payload = self._shadow_args
        router = self.router
        if copied and error is None and router.options.copy_args:
            copied, value = _try_copy(value)
        run = ShadowRun(
            router, self.decision, self.decision.shadow,
            router.target(self.decision.shadow, self._wrapped, self._instance),
            payload if copied else None, value, error, self._span,
            closing=None if closing is None else (self, closing),
        )
        if not copied:
            run.close_call()
            run.uncopyable()
        elif self.is_async:
            if not run.shadows.submit_async(run.async_job):
                run.dropped()
        else:
            offer = run.shadows.offer(run.sync_job)
            if offer is not Offer.STARTING:
                run.close_call()  # no free worker: never leave a call's span behind a busy one
            if offer is Offer.DROPPED:
                run.dropped()


class ShadowRun:
    """One shadow: run the other implementation, compare, record; never raises."""

    __slots__ = (
        "_authoritative_error", "_authoritative_value", "_closing", "_deadline", "_parent",
        "_payload", "_target", "decision", "implementation", "instruments", "router", "shadows",
    )

    def __init__(
        self, router: Router, decision: Decision, implementation: Implementation,
        target: Callable[..., Any], payload: Any,
        authoritative_value: Any, authoritative_error: BaseException | None,
        parent: Span | None, *, closing: tuple[Invocation, float] | None = None,
    ) -> None:
        self.router = router
        self.decision = decision
        self.implementation = implementation
        self._target = target
        self._payload = payload
        self._authoritative_value = authoritative_value
        self._authoritative_error = authoritative_error
        self._parent = parent
        self._deadline = _clock() + router.options.shadow_timeout
        # The executor of this moment, for good: a configure() racing with this call must not
        # leave the hand-over with one executor and the job with another.
        self.shadows = router.shadows
        self.instruments = router.instruments
        # (invocation, elapsed): this run closes that call first (or at exit, if never started)
        self._closing = closing
        if closing is not None:
            self.shadows.hand_over(self)

    def close_call(self) -> None:
        """Close the call handed to this run, once, whoever gets here first."""
        if self._closing is not None and self.shadows.take_back(self):
            invocation, elapsed = self._closing
            self._closing = None
            try:
                invocation.close(elapsed)
            except Exception:  # telemetry must never take down a shadow worker
                logger.warning("closing the call span of %r failed", self.router.name,
                               exc_info=True)

    def sync_job(self) -> None:
        self.close_call()
        if _clock() >= self._deadline:
            self._conclude(None, Comparison.TIMEOUT, 0.0)
            return
        inputs = self._inputs()
        if inputs is None:
            return
        args, kwargs = inputs
        span, token = self._open()
        started = _clock()
        try:
            value, error = self._target(*args, **kwargs), None
        except Exception as exc:
            value, error = None, exc
        finally:
            context.detach(token)
        self._finish(span, value, error, _clock() - started)

    async def async_job(self) -> None:
        inputs = self._inputs()
        if inputs is None:
            return
        args, kwargs = inputs
        span, token = self._open()
        started = _clock()
        deadline = asyncio.timeout(max(self._deadline - _clock(), 0.0))
        try:
            async with deadline:
                value = await self._target(*args, **kwargs)
            error: BaseException | None = None
        except TimeoutError as exc:
            value, error = None, exc  # the shadow's own TimeoutError, unless the deadline fired
            if deadline.expired():
                context.detach(token)
                elapsed = _clock() - started
                self._record(span, exc, elapsed)  # cut off: counted, as a late sync shadow is
                self._conclude(span, Comparison.TIMEOUT, elapsed)
                return
        except Exception as exc:
            value, error = None, exc
        context.detach(token)
        self._finish(span, value, error, _clock() - started)

    def dropped(self) -> None:
        """The executor was full: count it and run nothing (cheap: this is the caller's thread)."""
        self.instruments.record_comparison(self.router.name, self.decision.phase,
                                                  Comparison.DROPPED)

    def _inputs(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The shadow's own arguments, thawed from the snapshot (``None``: could not be)."""
        try:
            inputs: tuple[tuple[Any, ...], dict[str, Any]] = _thaw(self._payload)
        except Exception:
            self.uncopyable()
            return None
        return inputs

    def uncopyable(self) -> None:
        """The arguments could not be deep-copied, so the shadow cannot run safely."""
        self._conclude(None, Comparison.ERROR, 0.0, differences=("arguments could not be copied",))

    def _open(self) -> tuple[Span, Token[Context]]:
        router = self.router
        span = self.instruments.tracer.start_span(
            router.shadow_span_name,
            context=trace.set_span_in_context(self._parent) if self._parent is not None else None,
            attributes=self.instruments.shadow_attributes(router.name, self.decision.phase,
                                                            self.implementation),
        )
        return span, context.attach(trace.set_span_in_context(span))

    def _record(self, span: Span | None, error: BaseException | None, elapsed: float) -> None:
        router = self.router
        self.instruments.record_call(
            router.name, self.decision.phase, self.implementation, Role.SHADOW,
            Outcome.ERROR if error is not None else Outcome.SUCCESS, elapsed,
        )
        if span is not None and error is not None and span.is_recording():
            span.set_attribute(semconv.ATTR_ERROR_TYPE, error_type(error))

    def _finish(
        self, span: Span | None, value: Any, error: BaseException | None, elapsed: float
    ) -> None:
        self._record(span, error, elapsed)
        if _clock() > self._deadline:
            self._conclude(span, Comparison.TIMEOUT, elapsed)
            return
        result, differences = self._compare(value, error)
        self._conclude(span, result, elapsed, differences=differences, shadow_error=error)

    def _compare(
        self, value: Any, error: BaseException | None
    ) -> tuple[Comparison, tuple[str, ...]]:
        theirs = self._authoritative_error
        if theirs is not None or error is not None:
            if theirs is not None and error is not None and type(theirs) is type(error):
                return Comparison.MATCH, ()
            return Comparison.MISMATCH, ()
        comparator = self.router.options.comparator
        try:
            mine = _thaw(self._authoritative_value)
        except Exception:
            return Comparison.ERROR, ("the authoritative result could not be copied",)
        try:
            outcome: ComparisonResult = as_result(comparator(mine, value))
        except Exception as exc:
            logger.warning("comparator of %r raised %s; counted as a comparison error",
                           self.router.name, error_type(exc), exc_info=True)
            return Comparison.ERROR, (f"comparator raised {error_type(exc)}",)
        return (Comparison.MATCH if outcome.equal else Comparison.MISMATCH), outcome.differences

    def _conclude(
        self, span: Span | None, result: Comparison, elapsed: float, *,
        differences: tuple[str, ...] = (), shadow_error: BaseException | None = None,
    ) -> None:
        router = self.router
        instruments = self.instruments
        instruments.record_comparison(router.name, self.decision.phase, result)
        if span is not None:
            if span.is_recording():
                span.set_attribute(semconv.ATTR_COMPARISON, result.value)
                if differences:
                    span.set_attribute(semconv.ATTR_DIFFERENCES, "; ".join(differences)[:2000])
            span.end()
        if result is Comparison.MATCH:
            return
        trace_id = None
        if self._parent is not None:
            trace_id = format(self._parent.get_span_context().trace_id, "032x")
        report = MismatchReport(
            name=router.name,
            phase=self.decision.phase,
            authoritative=self.decision.authoritative,
            shadow=self.implementation,
            result=result,
            differences=differences,
            authoritative_error=(
                error_type(self._authoritative_error) if self._authoritative_error else None
            ),
            shadow_error=error_type(shadow_error) if shadow_error else None,
            trace_id=trace_id,
        )
        if result is Comparison.MISMATCH:
            mismatch_logger.warning("%s", report.summary())
        else:
            mismatch_logger.info("%s", report.summary())
        call_hook(router.options.hooks, "on_mismatch", report)


_ATOMIC = frozenset({str, int, float, bool, bytes, type(None)})
_IMMUTABLE = (str, int, float, bool, bytes)


def _immutable(value: Any) -> bool:
    kind = type(value)
    if kind in _ATOMIC:
        return True
    if kind is tuple or kind is frozenset:
        return all(_immutable(item) for item in value)
    # A subclass of an atom is shared only if it carries no attributes of its own.
    return isinstance(value, _IMMUTABLE) and not hasattr(value, "__dict__")


class _Pickled:
    """A snapshot taken with pickle, thawed on the shadow's thread."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _try_copy_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """Snapshot a call's arguments for its shadow (see :func:`_try_copy`).

    The keyword dict is the call's own, fresh per call and seen by no one else, so only its
    values need protecting.
    """
    if _immutable(args) and all(_immutable(value) for value in kwargs.values()):
        return True, (args, kwargs)
    return _snapshot((args, kwargs))


def _try_copy(value: Any) -> tuple[bool, Any]:
    """Snapshot ``value`` so nothing done to the original later can reach the copy.

    Immutable values are shared; the rest goes to :func:`_snapshot`.
    """
    if _immutable(value):  # nothing to protect: share it
        return True, value
    return _snapshot(value)


def _snapshot(value: Any) -> tuple[bool, Any]:
    """Pickle (C speed: ~10x cheaper than ``deepcopy`` for a small dict, ~20x for a page of rows)
    takes the snapshot on the caller's thread and :func:`_thaw` rebuilds it on the shadow's; what
    pickle refuses (local classes, lambdas) falls back to ``copy.deepcopy``; what neither can
    copy is reported as ``(False, None)``."""
    try:
        return True, _Pickled(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    except Exception:
        pass
    try:
        return True, copy.deepcopy(value)
    except Exception:
        return False, None


def _thaw(value: Any) -> Any:
    """The value a :func:`_try_copy` snapshot stands for (a fresh object for a pickled one)."""
    return pickle.loads(value.data) if type(value) is _Pickled else value

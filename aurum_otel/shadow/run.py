"""One shadow run: the other implementation on a worker, compared, counted exactly once.

A run is concluded exactly once, by whoever gets there first: the worker that ran it, the reaper
at its deadline (started or not), the client's ``close()`` (not started), or shutdown. Whatever
concludes it counts it (``aurum.migration.comparisons``), logs it and releases its snapshots; the
worker, if the run ever started, ends its span with the conclusion. A run never raises.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context, trace
from opentelemetry.trace import Span

from aurum_otel import nesting, semconv
from aurum_otel.compare import EQUAL, ComparisonResult, as_result
from aurum_otel.errors import error_type
from aurum_otel.hooks import MismatchReport, call_hook
from aurum_otel.phase import Comparison, Implementation, Outcome, Role, Rollout, SkipReason
from aurum_otel.router import Decision
from aurum_otel.shadow import capture
from aurum_otel.shadow.executor import worker_loop
from aurum_otel.shadow.snapshot import Endless, materialized, size_of, thaw
from aurum_otel.telemetry.sdk import set_known_attribute

if TYPE_CHECKING:
    from aurum_otel.route import Router
    from aurum_otel.shadow.scope import ShadowScope

logger = logging.getLogger("aurum_otel")

_clock = time.perf_counter
_START, _CONCLUDE = 0, 1  # a run's two claims



class _Closable(Protocol):
    """A routed call whose closing was handed to a shadow run."""

    def close(self, elapsed: float) -> None: ...


class _CutOff(Exception):
    """An async shadow cut off at its deadline."""


class ShadowRun:
    """One shadow: run the other implementation, compare, record; never raises."""

    __slots__ = (
        "__weakref__", "_authoritative_error", "_authoritative_value", "_claims", "_closing",
        "_context", "_legacy", "_parent", "_payload", "_target",
        "authoritative_elapsed", "cut", "deadline", "decision", "implementation", "instruments",
        "is_async", "reason", "result", "rollout", "router", "scope", "shadows", "size",
    )

    def __init__(
        self, router: Router, decision: Decision, target: Callable[..., Any] | None,
        legacy: Callable[..., Any], payload: Any, authoritative_value: Any,
        authoritative_error: BaseException | None, parent: Span | None, *,
        closing: _Closable | None = None, scope: ShadowScope | None = None,
        rollout: Rollout | None = None, authoritative_elapsed: float = 0.0,
        inputs_size: int | None = None,
    ) -> None:
        self.router = router
        self.rollout = rollout
        self.authoritative_elapsed = authoritative_elapsed
        self.decision = decision
        self.implementation: Implementation = decision.shadow  # type: ignore[assignment]
        self.is_async = router.is_async
        self._target = target  # None: bind the shadow's own copy of the instance
        self._legacy = legacy
        self._payload = payload
        self._authoritative_value = authoritative_value
        self._authoritative_error = authoritative_error
        self._parent = parent
        self._context = contextvars.copy_context()  # the caller's request-scoped variables
        self.deadline = _clock() + router.options.shadow_timeout
        # what the snapshots hold against the budget (the caller may have counted its inputs)
        self.size = ((size_of(payload) if inputs_size is None else inputs_size)
                     + size_of(authoritative_value))
        # The executor and instruments of this moment, for good: a configure() racing with this
        # call must not leave the hand-over with one executor and the job with another.
        self.shadows = router.shadows
        self.instruments = router.instruments
        # each claim removed by one claimant only (set.remove is atomic): who starts or cancels
        # it, and who concludes it
        self._claims = {_START, _CONCLUDE}
        self.result: Comparison | None = None
        self.reason: SkipReason | None = None
        self.cut = False
        self._closing = closing  # the call to close, at authoritative_elapsed
        if closing is not None:
            self.shadows.hand_over(self)
        self.scope = scope
        if scope is not None and not scope.enter(self):
            self.scope = None
            self.skip(SkipReason.CLOSED)

    # ------------------------------------------------------------ the executor's side

    def run(self) -> None:
        try:
            self._claims.remove(_START)
        except KeyError:
            return  # concluded before it started
        try:
            self.close_call()
            if _clock() >= self.deadline:
                self._conclude(Comparison.TIMEOUT, SkipReason.DEADLINE_BEFORE_START)
                self._span_now()
                return
            self._context.run(self._run)
        finally:
            self._leave()
            self._drop_references()

    def expire(self) -> None:
        """The deadline passed: counted ``timeout`` now, whether it started or not."""
        if self._claim_start():
            self.close_call()
            if self._conclude(Comparison.TIMEOUT, SkipReason.DEADLINE_BEFORE_START):
                self._span_now()
            self._leave()
            self._drop_references()
        else:
            self._conclude(Comparison.TIMEOUT, SkipReason.DEADLINE)  # its worker ends the span

    def cancel(self, reason: str) -> None:
        """It will not run: its client closed (``skipped``) or shutdown (``dropped``)."""
        result = Comparison.SKIPPED if reason == SkipReason.CLOSED else Comparison.DROPPED
        if self._claim_start():
            self.close_call()
            if self._conclude(result, SkipReason(reason)):
                self._span_now()
            self._leave()
            self._drop_references()
        elif result is Comparison.DROPPED:
            self._conclude(result, SkipReason.SHUTDOWN)  # running at exit: counted now

    def close_call(self) -> None:
        """Close the call handed to this run, once, whoever gets here first."""
        if self._closing is not None and self.shadows.take_back(self):
            invocation, self._closing = self._closing, None
            try:
                invocation.close(self.authoritative_elapsed)
            except Exception:  # telemetry must never take down a shadow worker
                logger.warning("closing the call span of %r failed", self.router.name,
                               exc_info=True)

    # ------------------------------------------------------------ the caller's side

    def skip(self, reason: SkipReason) -> None:
        """Not run at all (what it needed could not be copied, or its client is closed)."""
        if self._claim_start():
            self.size = 0  # never offered: the executor holds nothing of it
            self.close_call()
            if self._conclude(Comparison.SKIPPED, reason):
                self._span_now()
            self._leave()

    @property
    def concluded(self) -> bool:
        return _CONCLUDE not in self._claims

    def dropped(self, why: str) -> None:
        """Shed by the executor (cheap: this is the caller's thread)."""
        if self._claim_start():
            self.size = 0  # refused: the executor holds nothing of it
            self.close_call()
            self._conclude(Comparison.DROPPED, None)
            logger.debug("shadow of %r dropped: %s", self.router.name, why)
            self._leave()

    # ------------------------------------------------------------ running

    def _run(self) -> None:  # in a copy of the caller's context
        try:
            instance, args, kwargs = thaw(self._payload)
        except Exception:
            self._conclude(Comparison.ERROR, SkipReason.UNCOPYABLE_ARGUMENTS,
                           ("the arguments' snapshot could not be rebuilt",))
            self._span_now()
            return
        target = self._target if self._target is not None else self._bind(instance)
        span = self._open()
        token = context.attach(trace.set_span_in_context(span))
        nest = nesting.enter(self.router.name, self.implementation)
        started = _clock()
        value: Any = None
        error: BaseException | None = None
        try:
            if self.is_async:
                value, error = worker_loop().run_until_complete(self._await(target, args, kwargs))
            else:
                value = target(*args, **kwargs)
        except BaseException as exc:  # SystemExit in a shadow is the shadow's, never the caller's
            error = exc
        finally:
            nesting.leave(nest)
            context.detach(token)
        self._finish(span, value, error, _clock() - started)

    async def _await(self, target: Callable[..., Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> tuple[Any, BaseException | None]:
        deadline = asyncio.timeout(max(self.deadline - _clock(), 0.0))
        try:
            async with deadline:
                return await target(*args, **kwargs), None
        except TimeoutError as exc:  # the shadow's own TimeoutError, unless the deadline fired
            return None, (_CutOff() if deadline.expired() else exc)
        except BaseException as exc:
            return None, exc

    def _bind(self, instance: Any) -> Callable[..., Any]:
        if self.implementation is Implementation.LEGACY:
            return functools.partial(self._legacy, instance)
        return self.router.target(Implementation.SIMPLIFIED, self._legacy, instance)

    def _open(self) -> Span:
        return self.instruments.start_span(
            self.router.shadow_span_name,
            self.instruments.shadow_attributes(
                self.router.name, self.decision.phase, self.implementation),
            trace.set_span_in_context(self._parent) if self._parent is not None else None,
        )

    def _finish(self, span: Span, value: Any, error: BaseException | None,
                elapsed: float) -> None:
        cut_off = isinstance(error, _CutOff)
        self.instruments.record_call(
            self.router.name, self.decision.phase, self.implementation, Role.SHADOW,
            Outcome.ERROR if error is not None else Outcome.SUCCESS, elapsed,
        )
        differences: tuple[str, ...] = ()
        if _CONCLUDE not in self._claims:
            pass  # the reaper counted it at its deadline
        elif cut_off or _clock() > self.deadline:
            self._conclude(Comparison.TIMEOUT, SkipReason.DEADLINE)
        elif self.cut:
            self._conclude(Comparison.SKIPPED, SkipReason.CLOSED)
        elif error is not None and not isinstance(error, Exception):
            self._conclude(Comparison.ERROR, SkipReason.SHADOW_RAISED, shadow_error=error)
        else:
            result, reason, differences = self._compare(value, error)
            if reason is None and result is not Comparison.ERROR:
                self._record_pair(error, elapsed)  # both sides finished: a pair to judge
            if _CONCLUDE in self._claims and capture.wanted(self, result):
                capture.capture(self, span, self._payload, self._authoritative_value,
                                self._authoritative_error, value, error, result, differences)
            self._conclude(result, reason, differences, shadow_error=error)
        if span.is_recording():
            set_known_attribute(span, semconv.ATTR_COMPARISON,
                                (self.result or Comparison.TIMEOUT)._value_)  # a plain str
            if self.reason is not None:
                span.set_attribute(semconv.ATTR_COMPARISON_REASON, self.reason.value)
            if differences:
                span.set_attribute(semconv.ATTR_DIFFERENCES, "; ".join(differences)[:2000])
            if error is not None:
                span.set_attribute(semconv.ATTR_ERROR_TYPE,
                                   "TimeoutError" if cut_off else error_type(error))
        self.instruments.end_span(span)

    def _record_pair(self, error: BaseException | None, elapsed: float) -> None:
        """One pair for the paired statistics: who failed and who took longer, per side."""
        record = self.instruments.aggregator.record_pair
        if self.implementation is Implementation.SIMPLIFIED:  # the shadow is simplified
            record(self.router.name, self._authoritative_error is not None, error is not None,
                   self.authoritative_elapsed, elapsed)
        else:
            record(self.router.name, error is not None, self._authoritative_error is not None,
                   elapsed, self.authoritative_elapsed)

    def _compare(self, value: Any, error: BaseException | None
                 ) -> tuple[Comparison, SkipReason | None, tuple[str, ...]]:
        theirs = self._authoritative_error
        if theirs is not None or error is not None:
            if theirs is not None and error is not None and type(theirs) is type(error):
                return Comparison.MATCH, None, ()
            return Comparison.MISMATCH, None, ()
        try:
            mine = thaw(self._authoritative_value)
        except Exception:
            return Comparison.ERROR, None, ("the authoritative result's snapshot could not be "
                                            "rebuilt",)
        try:
            mine, value = materialized(mine), materialized(value)
        except Endless:
            return Comparison.SKIPPED, SkipReason.INCOMPARABLE_RESULT, ()
        except Exception as exc:  # iterating the shadow's lazy result raised: the shadow's error
            return Comparison.MISMATCH, None, (f"iterating the result raised {error_type(exc)}",)
        options = self.router.options
        try:
            if options.clean is not None:
                mine, value = options.clean(mine), options.clean(value)
            outcome: ComparisonResult = as_result(options.comparator(mine, value))
            if outcome is EQUAL:  # the usual case
                return Comparison.MATCH, None, ()
            if not getattr(outcome, "comparable", True):
                return Comparison.SKIPPED, SkipReason.INCOMPARABLE_RESULT, outcome.differences
            if outcome.equal:
                return Comparison.MATCH, None, ()
            if any(accepts(mine, value) for accepts in options.ignore):
                return Comparison.IGNORED, None, outcome.differences
        except Exception as exc:  # user code: comparator, clean or an ignore predicate
            logger.warning("comparing results of %r raised %s; counted as a comparison error",
                           self.router.name, error_type(exc))
            return Comparison.ERROR, None, (f"comparison raised {error_type(exc)}",)
        return Comparison.MISMATCH, None, outcome.differences

    # ------------------------------------------------------------ concluding, once

    def _drop_references(self) -> None:
        """Done running: keep nothing alive (the executor may hold this run until its deadline)."""
        self._target = self._parent = self._payload = self._authoritative_value = None
        self._authoritative_error = None
        self._context = None  # type: ignore[assignment]

    def _claim_start(self) -> bool:
        try:
            self._claims.remove(_START)  # atomic: one claimant wins
        except KeyError:
            return False
        return True

    def _leave(self) -> None:
        scope, self.scope = self.scope, None
        if scope is not None:
            scope.leave(self)

    def _conclude(self, result: Comparison, reason: SkipReason | None,
                  differences: tuple[str, ...] = (), *,
                  shadow_error: BaseException | None = None) -> bool:
        try:
            self._claims.remove(_CONCLUDE)
        except KeyError:
            return False  # counted already
        self.result, self.reason = result, reason
        self._payload = self._authoritative_value = None
        self.shadows.release(self.size)
        router = self.router
        # the call's span (the shadow span's parent) becomes the comparisons point's exemplar
        self.instruments.record_comparison(router.name, self.decision.phase, result,
                                           span=self._parent)
        if result is Comparison.MATCH or result is Comparison.DROPPED or result is Comparison.IGNORED:
            return True  # nothing to report: agreed, shed, or a difference the user accepts
        try:
            self._report(result, reason, differences, shadow_error)
        except Exception:  # a log handler or hook gone wrong is never the shadow's outcome
            logger.warning("reporting a shadow of %r failed", router.name, exc_info=True)
        return True

    def _report(self, result: Comparison, reason: SkipReason | None,
                differences: tuple[str, ...], shadow_error: BaseException | None) -> None:
        trace_id = None
        if self._parent is not None:
            trace_id = format(self._parent.get_span_context().trace_id, "032x")
        report = MismatchReport(
            name=self.router.name, phase=self.decision.phase,
            authoritative=self.decision.authoritative, shadow=self.implementation,
            result=result,
            differences=((f"reason: {reason.value}",) if reason is not None else ()) + differences,
            authoritative_error=(error_type(self._authoritative_error)
                                 if self._authoritative_error else None),
            shadow_error=error_type(shadow_error) if shadow_error else None,
            trace_id=trace_id,
        )
        self.router.mismatch_log.report(report)  # rate-limited; every one is counted anyway
        call_hook(self.router.options.hooks, "on_mismatch", report)

    def _span_now(self) -> None:
        """A zero-length shadow span for a run concluded without running, naming why."""
        try:
            span = self._open()
            if span.is_recording():
                span.set_attribute(semconv.ATTR_COMPARISON,
                                   (self.result or Comparison.SKIPPED).value)
                if self.reason is not None:
                    span.set_attribute(semconv.ATTR_COMPARISON_REASON, self.reason.value)
            span.end()
        except Exception:
            logger.warning("recording a skipped shadow of %r failed", self.router.name,
                           exc_info=True)

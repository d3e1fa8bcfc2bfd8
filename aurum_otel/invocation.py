"""One routed call, carried out by the sync and async shells of ``@migrated``.

The shells only call the target and hand back what happened; the span, the count, the fallback
and the hand-off of the shadow happen here once for both. The shadow itself runs in
:mod:`aurum_otel.shadow`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import Token
from types import MethodType
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from aurum_otel import nesting, semconv
from aurum_otel.errors import error_type
from aurum_otel.hooks import call_hook
from aurum_otel.phase import Implementation, Outcome, PhaseState, Role, SkipReason
from aurum_otel.router import Decision
from aurum_otel.shadow import Offer, ShadowRun
from aurum_otel.shadow.snapshot import shared_size, take
from aurum_otel.telemetry.sdk import set_known_attribute, start_time_of

if TYPE_CHECKING:
    from aurum_otel.route import Router

logger = logging.getLogger("aurum_otel")

_clock = time.perf_counter

__all__ = ["Invocation", "error_type"]


class Invocation:
    """The life of one routed call: start, maybe fall back, end; then hand off the shadow."""

    __slots__ = (
        "_args", "_closed", "_digest", "_inputs_size", "_instance", "_kwargs", "_nest", "_outcome",
        "_shadow_args", "_span",
        "_started", "_tags_pending", "_token", "_wrapped", "decision", "implementation",
        "instruments", "is_async", "monitored", "router", "state",
    )

    def __init__(
        self, router: Router, decision: Decision, state: PhaseState, wrapped: Callable[..., Any],
        instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, monitored: bool,
        is_async: bool, digest: int | None = None,
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
        self._inputs_size: int | None = None  # the budget's count of shared arguments, if shared
        self._tags_pending = False
        self._nest: nesting.Nest | None = None
        self._closed = False  # a handed-over call's closing ran (see close())
        self._digest = digest  # the routing key's, when the call was split by key

    def start(self) -> Callable[..., Any]:
        """Open the span and return the authoritative target to call."""
        router, decision = self.router, self.decision
        if decision.shadow is not None:
            # Copied before the authoritative runs, so its mutations cannot reach the shadow.
            self._shadow_args = self._snapshot_inputs()
        if self.monitored:
            instruments = self.instruments
            # With a sync shadow, the call is usually closed by a shadow worker: the feature-flag
            # event (stamped with the start time) is added then, off the caller's path. Routing
            # attributes and the usual outcome (only an error or a fallback changes it) are set
            # at the start, for samplers and processors.
            self._tags_pending = decision.shadow is not None and not self.is_async
            span = instruments.start_span(
                router.span_name,
                instruments.span_attributes(
                    router.name, decision.phase, self.implementation, self.state.source),
            )
            if span.is_recording():
                if not self._tags_pending:
                    instruments.add_feature_flag_event(
                        span, router.name, decision.phase, source=self.state.source,
                        context_id=None if self._digest is None else router.context_id(
                            self._digest))
                if self.state.problem:
                    span.set_attribute(semconv.ATTR_CONFIG_ERROR, self.state.problem)
            self._span = span
            self._token = context.attach(trace.set_span_in_context(span))
        self._nest = nesting.enter(router.name, self.implementation)
        self._started = _clock()
        return router.target(self.implementation, self._wrapped, self._instance)

    def _snapshot_inputs(self) -> tuple[bool, Any]:
        """``(True, payload)`` for the shadow, or ``(False, reason)``: the payload is
        ``(instance, args, kwargs)``, the instance a copy of a method's ``self`` (a shadow never
        shares the caller's) or ``None`` when the shadow's target needs none."""
        args, kwargs, instance = self._args, self._kwargs, self._instance
        if not self.router.options.copy_args:
            return True, (None, args, kwargs)
        if self.router.copies_instance(instance):
            copied, payload = take((instance, args, kwargs))
            if copied:
                return True, payload
            reason = (SkipReason.UNCOPYABLE_INSTANCE if take((args, kwargs))[0]
                      else SkipReason.UNCOPYABLE_ARGUMENTS)
            return False, reason
        # The keyword dict is the call's own, fresh per call and seen by no one else, so only
        # its values need protecting. (Runs before the authoritative: user code it meets, an
        # argument's __getattr__ or __sizeof__, never fails the call; the shadow is skipped.)
        try:
            size = shared_size(args, kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException:
            return False, SkipReason.UNCOPYABLE_ARGUMENTS
        if size is not None:
            self._inputs_size = size
            return True, (None, args, kwargs)
        copied, payload = take((None, args, kwargs))
        return (True, payload) if copied else (False, SkipReason.UNCOPYABLE_ARGUMENTS)

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
            and self.router.options.fallback_allowed  # a write is never run twice unasked
        ):
            self._record(Implementation.SIMPLIFIED, Outcome.ERROR, elapsed)
            if self._span is not None and self._span.is_recording():
                self._add_pending_event(self._span)
                self._span.add_event(
                    semconv.EVENT_FALLBACK, {semconv.ATTR_ERROR_TYPE: error_type(error)}
                )
                self._span.set_attribute(semconv.ATTR_IMPLEMENTATION, Implementation.LEGACY.value)
            call_hook(self.router.options.hooks, "on_fallback", self.router.name, error)
            self.implementation = Implementation.LEGACY
            self._outcome = Outcome.FALLBACK
            self._shadow_args = None  # legacy has served; there is nothing left to compare
            if self._nest is not None:
                nesting.leave(self._nest)
            self._nest = nesting.enter(self.router.name, Implementation.LEGACY)
            self._started = _clock()
            return self.router.target(Implementation.LEGACY, self._wrapped, self._instance)
        self._detach()
        self._end(Outcome.ERROR, elapsed, error)
        self._hand_off_shadow(None, error, elapsed=elapsed)
        raise error

    def succeeded(self, value: Any) -> Any:
        elapsed = _clock() - self._started
        self._detach()
        if self._shadow_args is not None and not self.is_async:
            # The shadow's job closes this call's span (with this end time) and counts the call
            # before it runs the shadow, if a worker starts it at once; otherwise the caller does.
            self._hand_off_shadow(value, None, closing=elapsed, elapsed=elapsed)
        else:
            self._end(self._outcome, elapsed, None)
            self._hand_off_shadow(value, None, elapsed=elapsed)
        return value

    def close(self, elapsed: float) -> None:
        """Count and close a successful call whose end was handed to a shadow worker.

        The span ends ``elapsed`` after it started: its duration is the one the call counted.
        Once only, whoever asks (the worker, exit, or the caller when the hand-off failed).
        """
        if self._closed:
            return
        self._closed = True
        start_time = start_time_of(self._span)
        end_time = None if start_time is None else start_time + int(elapsed * 1e9)
        self._end(Outcome.SUCCESS, elapsed, None, end_time)

    def _detach(self) -> None:
        if self._nest is not None:
            nesting.leave(self._nest)
            self._nest = None
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
            if outcome is not Outcome.SUCCESS:
                set_known_attribute(span, semconv.ATTR_OUTCOME, outcome.value)
            if error is not None:
                span.set_attribute(semconv.ATTR_ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self.instruments.end_span(span, end_time)

    def _add_pending_event(self, span: Span) -> None:
        if self._tags_pending:
            self._tags_pending = False
            digest = self._digest
            self.instruments.add_feature_flag_event(
                span, self.router.name, self.decision.phase,
                timestamp=start_time_of(span), source=self.state.source,
                context_id=None if digest is None else self.router.context_id(digest),
            )

    def _record(self, implementation: Implementation, outcome: Outcome, elapsed: float) -> None:
        if self.monitored:
            self.instruments.record_call(
                self.router.name, self.decision.phase, implementation, Role.AUTHORITATIVE,
                outcome, elapsed,
            )

    def _hand_off_shadow(self, value: Any, error: BaseException | None,
                         closing: float | None = None, *, elapsed: float = 0.0) -> None:
        """Give the shadow its job; whatever happens here never reaches the caller."""
        if self._shadow_args is None or self.decision.shadow is None:
            return
        try:
            self._hand_off(value, error, closing, elapsed)
        except KeyboardInterrupt:
            raise
        except BaseException:
            logger.warning("handing off a shadow of %r failed", self.router.name, exc_info=True)
            if closing is not None:
                self.close(closing)  # no worker took the call: its span and count are ours

    def _hand_off(self, value: Any, error: BaseException | None, closing: float | None,
                  elapsed: float) -> None:
        copied, payload = self._shadow_args  # type: ignore[misc]
        router = self.router
        skip: SkipReason | None = None if copied else payload
        if skip is not None:
            payload = None
        result: Any = value
        if copied and error is None and router.options.copy_args:
            copied, result = take(value)
            if not copied:
                skip, payload = SkipReason.UNCOPYABLE_RESULT, None
        target = None  # None: the worker binds the shadow's own copy of the instance
        if not (router.options.copy_args and router.copies_instance(self._instance)):
            target = router.target(self.decision.shadow, self._wrapped,  # type: ignore[arg-type]
                                   self._instance)
        run = ShadowRun(
            router, self.decision, target, _function_of(self._wrapped), payload, result, error,
            self._span, closing=None if closing is None else self,
            scope=router.scope, rollout=self.state.rollout, authoritative_elapsed=elapsed,
            inputs_size=self._inputs_size,
        )
        if skip is not None:
            run.skip(skip)
        if run.concluded:  # skipped, or its client is closed
            return
        offer = run.shadows.offer(run)
        if offer is not Offer.STARTING:
            run.close_call()  # no free worker: never leave a call's span behind a busy one
            if not offer.accepted:
                run.dropped(offer.value)


def _function_of(wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """The plain function of a bound method (to bind the shadow's own copy of the instance)."""
    # inspect.ismethod's own test, without the call (isinstance: a wrapt proxy of a bound method
    # says it is one, through its __class__)
    return wrapped.__func__ if isinstance(wrapped, MethodType) else wrapped

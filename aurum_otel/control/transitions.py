"""Transitions as the controller reports them: counted, traced, logged; and what a tick did."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aurum_otel import semconv
from aurum_otel.errors import AurumOtelError
from aurum_otel.health.verdict import RuleResult, Status, Verdict
from aurum_otel.registry import get_registry
from aurum_otel.store import Transition

logger = logging.getLogger("aurum_otel.control")

DEFAULT_GIVE_UP_AFTER = 900.0
"""Seconds of consecutive failed evaluations after which ``watch`` stops (and says why)."""
MAX_RETRY_DELAY = 60.0


class EvaluationError(AurumOtelError):
    """``watch`` gave up: the health source failed on every try for ``give_up_after`` seconds."""


def record_transition(change: Transition, *, kind: str) -> None:
    """Count, trace, log and announce a transition that the store has written.

    ``kind`` (``manual``, ``plan``, ``health``) is the bounded-cardinality reason on the metric;
    the free-text reason goes to the store, the span event and the log.
    """
    registry = get_registry()
    instruments = registry.instruments()
    instruments.transitions.add(1, {
        semconv.ATTR_NAME: change.name,
        semconv.ATTR_FROM: change.from_phase.value,
        semconv.ATTR_TO: change.to_phase.value,
        semconv.ATTR_REASON: kind,
    })
    with instruments.tracer.start_as_current_span(
            semconv.SPAN_TRANSITION.format(name=change.name)) as span:
        span.add_event(semconv.EVENT_TRANSITION, {
            semconv.ATTR_NAME: change.name,
            semconv.ATTR_FROM: change.from_phase.value,
            semconv.ATTR_TO: change.to_phase.value,
            semconv.ATTR_ACTOR: change.actor,
            semconv.ATTR_REASON: change.reason,
            semconv.ATTR_PERCENT: change.rollout.percent,
            semconv.ATTR_COMPARE: change.rollout.compare,
        })
    level = logging.WARNING if change.to_phase.rank < change.from_phase.rank else logging.INFO
    logger.log(level, "migration %s: %s -> %s (percent %g, compare %g) by %s: %s", change.name,
               change.from_phase.value, change.to_phase.value, change.rollout.percent,
               change.rollout.compare, change.actor, change.reason)
    registry.invalidate(change.name)


@dataclass(frozen=True, slots=True)
class Tick:
    """What one controller evaluation did."""

    verdict: Verdict
    action: str  # advanced | rolled_back | held | paused | waiting | idle | done | conflict | failed
    message: str
    transition: Transition | None = None


def failed_verdict(name: str, message: str) -> Verdict:
    return Verdict(name, Status.INCONCLUSIVE, (RuleResult("evaluation", Status.INCONCLUSIVE,
                                                          message),), source="none")

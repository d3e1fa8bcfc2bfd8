"""Backtest a health policy over the past: what the controller would have done, beside what did.

The rules are evaluated step by step over a stretch of the health source's history (Prometheus:
each query evaluated as of that moment), and a simulated controller follows the verdicts as the
real one does: a rollback after ``rollback_after`` unhealthy verdicts in a row, an advance after
the step stayed healthy for ``bake`` seconds. The steps themselves are the ones that really ran
(the store's history), so the replay answers "would these rules have acted sooner, later, or not
at all?": the way to tune thresholds without an incident.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aurum_otel.health.paired import is_shadow_step, with_paired
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.verdict import Status, Verdict


@dataclass(frozen=True, slots=True)
class Moment:
    """One evaluation of the replay.

    Attributes:
        at: when (Unix seconds).
        verdict: what the rules said as of then.
        would: ``advance``, ``rollback`` or ``""`` (hold), per the simulated controller.
        happened: what the real controller or an operator did since the previous moment
            (``from -> to by actor: reason``), if anything.
    """

    at: float
    verdict: Verdict
    would: str
    happened: tuple[str, ...] = ()


def replay(policy: HealthPolicy, name: str, source_at: Callable[[float], Any], *, start: float,
           end: float, step: float, transitions: Sequence[Any] = (), bake: float = 300.0,
           rollback_after: int = 3) -> list[Moment]:
    """Evaluate ``policy`` for ``name`` every ``step`` seconds from ``start`` to ``end``.

    ``source_at(t)`` is the health source as of ``t``; ``transitions`` the store's history
    (objects with ``at``, ``from_phase``, ``to_phase``, ``actor``, ``reason`` and ``rollout``),
    oldest first. A shadow step is judged with the paired rule too, as the controller does.
    """
    moments: list[Moment] = []
    streak = 0
    step_started = start
    current: Any = None  # the transition that began the step in force (phase and rollout)
    for item in transitions:
        if item.at <= start:
            step_started = max(step_started, item.at) if item.at > 0 else step_started
            current = item
    previous = start
    t = start
    while t <= end + 1e-9:
        happened = tuple(
            f"{item.from_phase.value} -> {item.to_phase.value} by {item.actor}: {item.reason}"
            for item in transitions if previous < item.at <= t)
        if happened:
            step_started = max(item.at for item in transitions if previous < item.at <= t)
            current = [item for item in transitions if previous < item.at <= t][-1]
            streak = 0
        # a shadow step is judged pair by pair too, as the controller judges it
        rollout = getattr(current, "rollout", None)
        shadow = current is not None and rollout is not None and is_shadow_step(
            current.to_phase, rollout)
        verdict = (with_paired(policy) if shadow else policy).evaluate(name, source_at(t))
        would = ""
        if verdict.status is Status.UNHEALTHY:
            streak += 1
            if streak >= rollback_after:
                would, streak = "rollback", 0
        elif verdict.status is Status.HEALTHY:
            streak = 0
            if t - step_started >= bake:
                would = "advance"
        moments.append(Moment(t, verdict, would, happened))
        previous = t
        t += step
    return moments


def first_actions(moments: Sequence[Moment]) -> dict[str, float | None]:
    """When the simulated controller would first have advanced and first rolled back."""
    found: dict[str, float | None] = {"advance": None, "rollback": None}
    for moment in moments:
        if moment.would and found[moment.would] is None:
            found[moment.would] = moment.at
    return found

"""The controller: advance, roll back, and walk a rollout plan on health verdicts and gates.

Every transition is written to the store with its actor and reason, counted in
``aurum.migration.transitions``, emitted as a span event and logged. Pauses, approvals and waits
live in the control state beside the store (:mod:`aurum_otel.control.state`), so that
``aurum-migrate pause``/``resume``/``approve`` reach a running ``watch`` and a restarted one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from aurum_otel.control import verdicts
from aurum_otel.control.backends import control_store_for
from aurum_otel.control.gates import Gates
from aurum_otel.control.lease import LeaseKeeper
from aurum_otel.control.plan import DEFAULT_PLAN, Plan, Step, plan_position
from aurum_otel.control.state import ControlState, ControlStore
from aurum_otel.control.transitions import (
    DEFAULT_GIVE_UP_AFTER,
    MAX_RETRY_DELAY,
    EvaluationError,
    Tick,
    failed_verdict,
    record_transition,
)
from aurum_otel.control.webhooks import Confirmer, Notifier
from aurum_otel.errors import AurumOtelError, ConfigurationError, TransitionConflictError
from aurum_otel.health.paired import is_shadow_step, with_paired
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.stats import HealthSource
from aurum_otel.health.verdict import Status, Verdict
from aurum_otel.hooks import call_hook
from aurum_otel.phase import Phase, Rollout
from aurum_otel.registry import get_registry
from aurum_otel.store import MigrationRecord, PhaseStore, Transition, WatchState

logger = logging.getLogger("aurum_otel.control")


class Controller:
    """Advances or rolls back one migration along a plan on health verdicts.

    Args:
        name: the migration.
        source: where health figures come from (default: the registry's in-process reader).
        policy: rules and window.
        plan: the rollout plan: steps or a :class:`Plan` (default :data:`DEFAULT_PLAN`).
        bake: seconds a step must stay healthy before the next one (unless the step sets its own).
        rollback_after: consecutive unhealthy verdicts that trigger a rollback to legacy.
        store: default: the registry's.
        clock: monotonic seconds, injected for tests.
        actor: who the transitions are written as.
        hooks: ``on_transition`` receives every transition.
        wall_clock: Unix seconds, to resume a step begun before a restart (the step's start is
            its transition's time in the store; the unhealthy streak is kept there too).
        give_up_after: seconds of consecutive failed evaluations (health source down, hung,
            erroring) after which :meth:`watch` raises :class:`EvaluationError`; until then it
            holds the step and retries with a capped exponential backoff.
        control: where pauses, approvals and waits are kept (default: beside ``store``).
        confirmer: asked before each step is entered (default: the plan's ``confirm`` hook).
        notifier: hears of events (default: the plan's ``notify`` hooks).
    """

    def __init__(
        self,
        name: str,
        *,
        source: HealthSource | None = None,
        policy: HealthPolicy | None = None,
        plan: Sequence[Step] | Plan = DEFAULT_PLAN,
        bake: float = 300.0,
        rollback_after: int = 3,
        store: PhaseStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        actor: str = "controller",
        hooks: Any = None,
        wall_clock: Callable[[], float] = time.time,
        give_up_after: float = DEFAULT_GIVE_UP_AFTER,
        control: ControlStore | None = None,
        confirmer: Confirmer | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        if isinstance(plan, Plan):
            confirmer = confirmer or (Confirmer(plan.confirm) if plan.confirm else None)
            notifier = notifier or (Notifier(plan.notify) if plan.notify else None)
            plan = plan.steps
        if not plan:
            raise ConfigurationError("plan", "[]", "at least one step")
        if rollback_after < 1:
            raise ConfigurationError("rollback_after", rollback_after, "an integer >= 1")
        if not bake >= 0:
            raise ConfigurationError("bake", bake, "seconds >= 0")
        if not give_up_after >= 0:
            raise ConfigurationError("give_up_after", give_up_after, "seconds >= 0")
        self.name = name
        self._source = source
        self.policy = policy or HealthPolicy()
        self.plan = tuple(plan)
        self.bake = bake
        self.rollback_after = rollback_after
        self._store = store
        self.clock = clock
        self.actor = actor
        self.hooks = hooks
        self.wall_clock = wall_clock
        self.give_up_after = give_up_after
        self.unhealthy_streak = 0
        self._observed: tuple[Phase, Rollout] | None = None
        self._step_started = clock()
        self._verdict: Verdict | None = None
        self._control = control
        self._rules: Any = None
        self._shadow_step = False
        self.gates = Gates(self, confirmer, notifier)

    @property
    def store(self) -> PhaseStore:
        return self._store or get_registry().store

    @property
    def control(self) -> ControlStore:
        if self._control is None:
            self._control = control_store_for(self.store)
        return self._control

    @property
    def source(self) -> HealthSource:
        if self._source is not None:
            return self._source
        reader = get_registry().health_reader
        if reader is None:
            raise ConfigurationError(
                "health source", None,
                "a HealthReader on the MeterProvider (setup_telemetry() adds one) or --source "
                "prometheus/file",
            )
        return reader

    def record(self) -> MigrationRecord:
        snapshot = self.store.snapshot()
        return snapshot.get(self.name) or MigrationRecord()

    def advance(self, to: Phase | Step | None = None, *, actor: str | None = None,
                reason: str = "advanced by operator", kind: str = "manual") -> Transition:
        """Move to ``to`` (a phase or plan step), or to the next plan step when ``None``."""
        record = self.record()
        if to is None:
            position = plan_position(self.plan, record.phase, record.rollout)
            if position + 1 >= len(self.plan):
                raise ConfigurationError(
                    "advance", record.phase.value,
                    "a phase before the plan's last step: this migration has finished its plan",
                )
            step = self.plan[position + 1]
        elif isinstance(to, Step):
            step = to
        elif to is Phase.HYBRID:
            step = next(s for s in self.plan if s.phase is Phase.HYBRID) if any(
                s.phase is Phase.HYBRID for s in self.plan) else Step(Phase.HYBRID, Rollout())
        else:
            step = Step(to)
        return self._write(step, actor or self.actor, reason, kind)

    def rollback(self, *, to_legacy: bool = True, actor: str | None = None,
                 reason: str = "rolled back by operator", kind: str = "manual") -> Transition:
        """Go back to legacy, or (``to_legacy=False``) one plan step back."""
        record = self.record()
        if to_legacy:
            step = Step(Phase.LEGACY, record.rollout)
        else:
            position = plan_position(self.plan, record.phase, record.rollout)
            step = self.plan[position - 1] if position > 0 else Step(Phase.LEGACY, record.rollout)
        return self._write(step, actor or self.actor, reason, kind)

    def _write(self, step: Step, actor: str, reason: str, kind: str,
               expected: MigrationRecord | None = None) -> Transition:
        # The controller's own steps are compare-and-set on the (phase, percent) it judged, so
        # of two controllers acting on the same verdict exactly one writes.
        change = self.store.transition(
            self.name, step.phase, step.rollout, actor=actor, reason=reason,
            expected=expected.phase if expected else None,
            expected_rollout=expected.rollout if expected else None,
        )
        record_transition(change, kind=kind)
        call_hook(self.hooks, "on_transition", change)
        self.unhealthy_streak = 0
        self._observed = (change.to_phase, change.rollout)
        self._step_started = self.clock()
        return change

    def evaluate(self) -> Verdict:
        """Judge the migration with the current step's rules (the policy's unless it sets some).

        A shadow step (hybrid, 0 % served by simplified, comparing) without rules of its own is
        judged by the policy's rules and the paired rule too (unless the policy has one): there
        every call runs both sides on the same input, the paired statistics' best case.
        """
        policy = self.policy
        if self._rules is not None:
            policy = HealthPolicy(self._rules, policy.window)
        elif self._shadow_step:
            policy = with_paired(policy)
        return policy.evaluate(self.name, self.source)

    def step_bake(self, position: int) -> float:
        """Seconds the step at ``position`` must stay healthy (its own bake or the default)."""
        own = self.plan[position].bake if 0 <= position < len(self.plan) else None
        return self.bake if own is None else own

    def tick(self) -> Tick:
        """Evaluate once and act: roll back, advance, wait at a gate, or hold.

        When another controller changed the phase first, the transition is not written and the
        tick reports ``conflict``; the next tick starts from the new phase. When the health
        source raises (any exception), the tick reports ``failed`` and nothing moves. A pause
        (by hand or a plan's ``pause`` gate), an ``approve`` gate or a confirmation hook that
        does not answer 2xx holds the advance, never a rollback.
        """
        try:
            tick = self._tick()
        except TransitionConflictError as exc:
            self._observed = None
            tick = Tick(self._verdict or failed_verdict(self.name, str(exc)), "conflict", str(exc))
        self._remember(tick)
        return tick

    def _remember(self, tick: Tick) -> None:
        """Keep the verdict in the history (never fails the tick: the history is a record)."""
        if tick.action == "failed":
            return  # no verdict: the source could not be read
        try:
            def add(state: ControlState) -> ControlState:
                item = verdicts.entry(
                    tick.verdict, action=tick.action, message=tick.message,
                    at=self.wall_clock(),
                    transition_id=tick.transition.id if tick.transition is not None else None,
                    caused_by=(verdicts.causes(state.verdicts, tick.action)
                               if tick.action in verdicts.ACTED else ()))
                return replace(state, verdicts=verdicts.appended(state.verdicts, item))

            self.control.update(self.name, add)
        except Exception:
            logger.warning("keeping the verdict history of %r failed", self.name, exc_info=True)

    def _tick(self) -> Tick:
        record = self.record()
        current = (record.phase, record.rollout)
        if current != self._observed:
            self._resume(record)
        position = plan_position(self.plan, record.phase, record.rollout)
        self._rules = self.plan[position].rules if position >= 0 else None
        self._shadow_step = is_shadow_step(record.phase, record.rollout)
        try:
            verdict = self._verdict = self.evaluate()
        except Exception as exc:  # a failed evaluation is never a verdict
            message = f"health evaluation failed ({type(exc).__name__}: {exc}); holding the step"
            return Tick(failed_verdict(self.name, message), "failed", message)
        if record.phase is Phase.LEGACY:
            return Tick(verdict, "idle", "at legacy: `aurum-migrate advance` starts the plan")
        if verdict.status is Status.UNHEALTHY:
            self.unhealthy_streak += 1
            self._save_streak(record)
            self.gates.event("unhealthy", record, verdict,
                             f"unhealthy ({self.unhealthy_streak}/{self.rollback_after})")
            if self.unhealthy_streak >= self.rollback_after:
                reason = (f"unhealthy {self.unhealthy_streak}x in a row: "
                          + "; ".join(verdict.reasons))
                change = self._write(Step(Phase.LEGACY, record.rollout), self.actor, reason,
                                     "health", expected=record)
                self.gates.event("rollback", record, verdict, reason, change)
                return Tick(verdict, "rolled_back", reason, change)
            return Tick(verdict, "held", f"unhealthy ({self.unhealthy_streak}/"
                                         f"{self.rollback_after} before rollback)")
        if verdict.status is Status.INCONCLUSIVE:
            return Tick(verdict, "held", "inconclusive: " + "; ".join(verdict.reasons))
        if self.unhealthy_streak:
            self.unhealthy_streak = 0
            self._save_streak(record)
        if position + 1 >= len(self.plan):
            return Tick(verdict, "done", "healthy at the plan's last step")
        held = self.gates.paused(record, verdict)
        if held is not None:
            return held
        baked, bake = self.clock() - self._step_started, self.step_bake(position)
        if baked < bake:
            return Tick(verdict, "held", f"healthy; baking {baked:.0f}/{bake:.0f} s")
        step = self.plan[position + 1]
        waiting = self.gates.before(record, verdict, position + 1)
        if waiting is not None:
            return waiting
        change = self._write(step, self.actor, f"healthy for {baked:.0f} s: next step {step.label}",
                             "plan", expected=record)
        self.gates.passed(record, verdict, change, position + 1)
        return Tick(verdict, "advanced", f"advanced to {step.label}", change)

    def _resume(self, record: MigrationRecord) -> None:
        """Take up a step, possibly begun before this process: its bake and streak so far."""
        self._observed = (record.phase, record.rollout)
        baked = max(0.0, self.wall_clock() - record.updated_at) if record.updated_at else 0.0
        self._step_started = self.clock() - baked
        watch = record.watch
        self.unhealthy_streak = (watch.unhealthy_streak if watch is not None and
                                 watch.transition_id == record.transition_id else 0)

    def _save_streak(self, record: MigrationRecord) -> None:
        save = getattr(self.store, "save_watch", None)
        if not callable(save) or not record.transition_id:
            return
        try:
            save(self.name, WatchState(record.transition_id, self.unhealthy_streak))
        except AurumOtelError as exc:
            logger.warning("migration %s: could not keep the unhealthy streak (%d) in the store "
                           "(%s); a restarted watch would count it again", self.name,
                           self.unhealthy_streak, exc)

    def watch(self, interval: float = 10.0, *, stop: threading.Event | None = None,
              max_ticks: int | None = None, on_tick: Callable[[Tick], None] | None = None,
              lease: LeaseKeeper | None = None) -> Tick:
        """Tick every ``interval`` seconds until stopped, ``max_ticks`` or the plan is done.

        A failed evaluation holds the step and is retried after ``interval``, doubling up to
        :data:`MAX_RETRY_DELAY`; after ``give_up_after`` seconds of failures in a row, raises
        :class:`EvaluationError`. With a ``lease``, each tick first checks that it is still held
        (:class:`~aurum_otel.control.lease.LeaseLostError` otherwise: nothing is written).
        """
        stop = stop or threading.Event()
        count = 0
        failing_since: float | None = None
        delay = interval
        while True:
            if lease is not None:
                lease.check()
            tick = self.tick()
            count += 1
            if on_tick is not None:
                on_tick(tick)
            if tick.action == "failed":
                now = self.clock()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self.give_up_after:
                    raise EvaluationError(
                        f"migration {self.name}: health evaluation failed for "
                        f"{now - failing_since:.0f} s (give_up_after={self.give_up_after:g} s); "
                        f"the rollout is NOT watched any more: {tick.message}. Fix the health "
                        "source and run watch again")
                logger.warning("migration %s: %s; retrying in %.1f s (giving up after %g s of "
                               "failures)", self.name, tick.message, delay, self.give_up_after)
                wait, delay = delay, min(delay * 2, max(MAX_RETRY_DELAY, interval))
            else:
                if failing_since is not None:
                    logger.warning("migration %s: health evaluation works again", self.name)
                failing_since, delay, wait = None, interval, interval
            if tick.action == "done" or (max_ticks is not None and count >= max_ticks):
                return tick
            if stop.wait(wait):
                return tick


"""A restarted controller resumes its plan: the same step, the remaining bake, its gates."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from aurum_otel import FileStore, Phase, Rollout, testing
from aurum_otel.control import Controller, FileControlStore, Mark, Plan, Step
from aurum_otel.health.verdict import RuleResult, Status, Verdict

PLAN = """\
steps:
  - {percent: 0, compare: 100, bake: 0}
  - {percent: 10, compare: 25, bake: 300}
  - {percent: 50, compare: 25, approve: true}
  - {phase: simplified}
"""


class Healthy(Controller):
    def evaluate(self) -> Verdict:
        return Verdict(self.name, Status.HEALTHY, (RuleResult("error_rate", Status.HEALTHY, "ok"),))


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        self.sent.append((event, payload))


def controller(store: FileStore, wall: float, now: float, events: Events | None = None
               ) -> Healthy:
    # bake=0 is the default: only the plan's per-step bake (300 s at 10 %) holds the step.
    return Healthy("svc", store=store, plan=Plan.from_yaml(PLAN), bake=0,
                   clock=lambda: now, wall_clock=lambda: wall,
                   notifier=events)  # type: ignore[arg-type]


def test_a_restart_resumes_the_same_step_with_the_remaining_bake(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    with testing.capture(store=store):
        change = controller(store, 0, 0).advance(Step(Phase.HYBRID, Rollout(10, 25)))
        first = controller(store, change.at + 250, 1000.0)
        assert first.tick().message == "healthy; baking 250/300 s"
        # The process restarts 10 s later: a new controller, a new monotonic clock.
        second = controller(store, change.at + 260, 3.0)
        tick = second.tick()
        assert (tick.action, tick.message) == ("held", "healthy; baking 260/300 s")
        third = controller(store, change.at + 301, 7.0)
        tick = third.tick()  # baked: now at the approve gate before 50 %
        assert (tick.action, tick.message.split(" (approve")[0]) == (
            "waiting", "waiting before hybrid 50% (compare 25%)")
    assert store.snapshot().records["svc"].rollout.percent == 10


def test_an_approval_wait_survives_a_restart_and_is_announced_once(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    control = FileControlStore(tmp_path)
    events = Events()
    with testing.capture(store=store):
        change = controller(store, 0, 0).advance(Step(Phase.HYBRID, Rollout(10, 25)))
        wall = change.at + 400
        assert controller(store, wall, 0, events).tick().action == "waiting"
        restarted = controller(store, wall + 5, 0, events)
        assert restarted.tick().action == "waiting"
        assert [e for e, _ in events.sent] == ["waiting_for_approval"]
        assert control.load("svc").waiting is not None
        control.update("svc", lambda s: s.release("approve", change.id, Mark("eve", "CAB-1", wall)))
        tick = controller(store, wall + 10, 0, events).tick()
    assert tick.action == "advanced", tick.message
    assert [e for e, _ in events.sent] == ["waiting_for_approval", "approved", "transition"]
    approved = events.sent[1][1]
    assert (approved["by"], approved["reason"], approved["next_step"]["index"]) == ("eve", "CAB-1",
                                                                                    2)
    assert control.load("svc").waiting is None


def test_an_approval_of_an_earlier_step_does_not_open_a_later_gate(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    control = FileControlStore(tmp_path)
    with testing.capture(store=store):
        old = controller(store, 0, 0).advance(Step(Phase.HYBRID, Rollout(0, 100)))
        control.update("svc", lambda s: s.release("approve", old.id, Mark("eve", "early", 0)))
        change = controller(store, 0, 0).advance(Step(Phase.HYBRID, Rollout(10, 25)))
        assert controller(store, change.at + 400, 0).tick().action == "waiting"


def test_a_pause_holds_the_advance_but_not_a_rollback(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    control = FileControlStore(tmp_path)
    with testing.capture(store=store):
        change = controller(store, 0, 0).advance(Step(Phase.HYBRID, Rollout(0, 100)))
        control.update("svc", lambda s: dataclasses.replace(s, paused=Mark("ops", "freeze", 0)))
        tick = controller(store, change.at + 10, 0).tick()
        assert (tick.action, tick.message.split(";")[0]) == ("paused", "paused by ops: freeze")

        class Sick(Controller):
            def evaluate(self) -> Verdict:
                return Verdict(self.name, Status.UNHEALTHY,
                               (RuleResult("error_rate", Status.UNHEALTHY, "9 %"),))

        sick = Sick("svc", store=store, plan=Plan.from_yaml(PLAN), rollback_after=1)
        assert sick.tick().action == "rolled_back"
    assert store.snapshot().records["svc"].phase is Phase.LEGACY

"""A restarted ``watch`` resumes its step; a failing health source holds the step, then gives up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, testing
from aurum_otel.control import Controller, EvaluationError, Step
from aurum_otel.health.verdict import RuleResult, Status, Verdict


class Scripted(Controller):
    """A controller whose verdicts are given, so only the controller's own logic is tested."""

    verdicts: list[Status]

    def evaluate(self) -> Verdict:
        status = self.verdicts.pop(0)
        return Verdict(self.name, status, (RuleResult("error_rate", status, status.value),))


def _controller(store: FileStore, wall: list[float], now: list[float], verdicts: list[Status],
                **options: Any) -> Scripted:
    controller = Scripted("svc", store=store, clock=lambda: now[0], wall_clock=lambda: wall[0],
                          **options)
    controller.verdicts = verdicts
    return controller


def test_a_restarted_watch_does_not_bake_the_step_again(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    wall, now = [0.0], [0.0]
    with testing.capture(store=store):
        first = _controller(store, wall, now, [Status.HEALTHY] * 3, bake=300)
        change = first.advance(Step(Phase.HYBRID, Rollout(percent=10, compare=25)))
        wall[0] = change.at + 250
        now[0] = 250
        assert first.tick().action == "held"  # 250 of 300 s baked
        # The process restarts: a new controller, a new monotonic clock.
        wall[0] = change.at + 310
        second = _controller(store, wall, [7.0], [Status.HEALTHY] * 3, bake=300)
        tick = second.tick()
    assert tick.action == "advanced", tick.message  # was: baking 0/300 s, from scratch
    assert store.snapshot().records["svc"].rollout.percent == 50


def test_a_restarted_watch_keeps_its_unhealthy_streak(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    wall, now = [0.0], [0.0]
    with testing.capture(store=store):
        first = _controller(store, wall, now, [Status.UNHEALTHY] * 2, rollback_after=3)
        change = first.advance(Step(Phase.HYBRID, Rollout(percent=10, compare=25)))
        wall[0] = change.at
        assert [first.tick().action for _ in range(2)] == ["held", "held"]
        second = _controller(store, wall, now, [Status.UNHEALTHY], rollback_after=3)
        tick = second.tick()
    assert tick.action == "rolled_back", tick.message  # was: unhealthy 1/3 after the restart
    assert store.snapshot().records["svc"].phase is Phase.LEGACY


def test_a_new_step_starts_a_new_streak(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    wall, now = [0.0], [0.0]
    with testing.capture(store=store):
        first = _controller(store, wall, now, [Status.UNHEALTHY] * 2, rollback_after=3)
        first.advance(Step(Phase.HYBRID, Rollout(percent=10, compare=25)))
        first.tick()
        first.tick()
        first.advance(Step(Phase.HYBRID, Rollout(percent=50, compare=25)))
        second = _controller(store, wall, now, [Status.UNHEALTHY], rollback_after=3)
        assert second.tick().action == "held"


class Failing:
    def __init__(self, now: list[float], errors: list[BaseException]) -> None:
        self.now, self.errors, self.calls = now, errors, 0

    def stats(self, name: str, window: float) -> Any:
        self.calls += 1
        self.now[0] += 100
        raise self.errors[min(self.calls - 1, len(self.errors) - 1)]


@pytest.mark.parametrize("error", [ConnectionRefusedError("prometheus down"),
                                   TimeoutError("hung"), RuntimeError("HTTP 500"),
                                   ZeroDivisionError("a bug")],
                         ids=["refused", "hung", "http-500", "any-exception"])
def test_a_failing_health_source_holds_the_step_then_gives_up(
        tmp_path: Path, error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    store = FileStore.in_dir(tmp_path)
    now = [0.0]
    source = Failing(now, [error])
    with testing.capture(store=store):
        controller = Controller("svc", store=store, source=source,  # type: ignore[arg-type]
                                clock=lambda: now[0], give_up_after=450, bake=0)
        controller.advance(Step(Phase.HYBRID, Rollout(percent=10, compare=25)))
        ticks: list[str] = []
        with caplog.at_level(logging.WARNING, logger="aurum_otel.control"), \
                pytest.raises(EvaluationError, match="450"):
            controller.watch(0.001, on_tick=lambda t: ticks.append(t.action))
    assert ticks and set(ticks) == {"failed"}  # held the step on every failure
    assert source.calls >= 4  # retried, not ended by the first failure
    assert store.snapshot().records["svc"].rollout.percent == 10  # nothing moved
    assert any("retrying" in r.getMessage() for r in caplog.records)


def test_a_source_that_recovers_resumes_the_watch(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    now = [0.0]

    class Flaky(Controller):
        failures = 2

        def evaluate(self) -> Verdict:
            if self.failures:
                self.failures -= 1
                raise OSError("connection reset")
            return Verdict(self.name, Status.HEALTHY, ())

    with testing.capture(store=store):
        controller = Flaky("svc", store=store, clock=lambda: now[0], bake=0,
                           plan=(Step(Phase.HYBRID, Rollout(percent=10)), Step(Phase.SIMPLIFIED)))
        controller.advance()
        ticks: list[str] = []
        last = controller.watch(0.001, on_tick=lambda t: ticks.append(t.action), max_ticks=10)
    assert ticks[:2] == ["failed", "failed"] and last.action == "done"
    assert store.snapshot().records["svc"].phase is Phase.SIMPLIFIED

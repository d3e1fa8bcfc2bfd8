"""The shadow step is judged pair by pair too (issue 16.2, "use it in shadow steps"): the
controller adds the paired rule to the policy there, and only there."""

from __future__ import annotations

from pathlib import Path

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.control import Controller
from aurum_otel.health import HealthPolicy, PairStats, SideStats, Status, WindowStats, default_rules
from aurum_otel.health.paired import PairedRule

# simplified fails alone on 40 of 400 shadowed inputs, legacy on none: +10 points
WORSE = PairStats(400, 0, 40, 200, 200, ((1.0, 200), (2.0, 400), (float("inf"), 400)))


class _Pairs:
    name = "pairs"

    def stats(self, migration: str, window: float) -> WindowStats:
        # populations look fine (the shadow's errors are too few for the population rule yet)
        return WindowStats(migration, window, SideStats(400, 0), SideStats(400, 4),
                           matches=400, mismatches=0, pairs=WORSE)


def _controller(tmp_path: Path, rollout: Rollout) -> Controller:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, rollout, actor="t", reason="t")
    return Controller("svc", store=store, source=_Pairs(), rollback_after=1,
                      policy=HealthPolicy(default_rules()))


def test_the_shadow_step_rolls_back_on_paired_errors(tmp_path: Path) -> None:
    controller = _controller(tmp_path, Rollout(percent=0, compare=100))
    tick = controller.tick()
    assert tick.action == "rolled_back", tick
    assert any(r.startswith("paired:errors: only simplified failed in 40") for r in
               tick.verdict.reasons)


def test_later_steps_keep_the_policy_as_it_is(tmp_path: Path) -> None:
    controller = _controller(tmp_path, Rollout(percent=10, compare=25))
    tick = controller.tick()
    assert tick.action != "rolled_back"
    assert not any(r.rule.startswith("paired") for r in tick.verdict.results)


def test_a_policy_with_its_own_paired_rule_is_not_given_another(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    loose = PairedRule(max_increase=0.5)
    controller = Controller("svc", store=store, source=_Pairs(), rollback_after=1,
                            policy=HealthPolicy(default_rules() & loose))
    tick = controller.tick()
    assert tick.verdict.status is not Status.UNHEALTHY, tick.verdict.reasons
    assert sum(r.rule == "paired:errors" for r in tick.verdict.results) == 1

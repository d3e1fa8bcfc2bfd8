from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.control import DEFAULT_PLAN, Controller, Step, plan_position
from aurum_otel.health import HealthPolicy, default_rules


def noisy_service(error_rate: dict[str, float], rng: random.Random):  # type: ignore[no-untyped-def]
    @migrated("svc")
    def handle(i: int) -> int:
        if rng.random() < error_rate["legacy"]:
            raise RuntimeError("legacy glitch")
        return i

    @handle.simplified
    def _handle(i: int) -> int:
        if rng.random() < error_rate["simplified"]:
            raise RuntimeError("simplified glitch")
        return i

    def traffic(count: int) -> None:
        for i in range(count):
            try:
                handle(i)
            except RuntimeError:
                pass

    return traffic


def test_plan_position() -> None:
    assert plan_position(DEFAULT_PLAN, Phase.LEGACY, Rollout()) == -1
    assert plan_position(DEFAULT_PLAN, Phase.HYBRID, Rollout(percent=0, compare=100)) == 0
    assert plan_position(DEFAULT_PLAN, Phase.HYBRID, Rollout(percent=50)) == 2
    assert plan_position(DEFAULT_PLAN, Phase.HYBRID, Rollout(percent=30)) == 1  # between steps
    assert plan_position(DEFAULT_PLAN, Phase.SIMPLIFIED, Rollout()) == 4


def test_controller_walks_the_plan_then_finishes(tmp_path: Path) -> None:
    now = [0.0]
    traffic = noisy_service({"legacy": 0.0, "simplified": 0.0}, random.Random(1))
    with testing.capture(state_dir=tmp_path, clock=lambda: now[0]) as telemetry:
        controller = Controller("svc", bake=10, clock=lambda: now[0],
                                policy=HealthPolicy(default_rules(min_samples=20), window=30))
        controller.advance()  # legacy -> shadow
        actions = []
        for _ in range(40):
            traffic(60)
            telemetry.wait_for_shadows()
            now[0] += 5
            tick = controller.tick()
            actions.append(tick.action)
            if tick.action == "done":
                break
        assert actions[-1] == "done", actions
        assert actions.count("advanced") == len(DEFAULT_PLAN) - 1
        history = FileStore.in_dir(tmp_path).snapshot().records["svc"].history
        assert [h.to_phase.value for h in history] == ["hybrid"] * 4 + ["simplified"]
        assert [h.rollout.percent for h in history][:4] == [0, 10, 50, 100]
        assert telemetry.counts("aurum.migration.transitions", reason="plan") == 4
        assert telemetry.counts("aurum.migration.transitions", reason="manual") == 1


@pytest.mark.parametrize("seed", range(20))
def test_noisy_but_healthy_traffic_never_rolls_back(tmp_path: Path, seed: int) -> None:
    now = [0.0]
    rng = random.Random(seed)
    # Both sides fail ~2 % at random: noisy, but within legacy + 1 point.
    traffic = noisy_service({"legacy": 0.02, "simplified": 0.02}, rng)
    with testing.capture(state_dir=tmp_path, clock=lambda: now[0], rand=rng.random) as telemetry:
        controller = Controller("svc", bake=1_000, rollback_after=3, clock=lambda: now[0],
                                policy=HealthPolicy(default_rules(min_samples=50), window=60))
        controller.advance(Step(Phase.HYBRID, Rollout(percent=50, compare=0)))
        for _ in range(8):
            traffic(250)
            now[0] += 10
            assert controller.tick().action != "rolled_back"
        telemetry.wait_for_shadows()
        assert FileStore.in_dir(tmp_path).snapshot().records["svc"].phase is Phase.HYBRID


def test_error_spike_rolls_back_within_bounded_evaluations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    rates = {"legacy": 0.0, "simplified": 0.0}
    traffic = noisy_service(rates, random.Random(7))
    with caplog.at_level(logging.INFO), testing.capture(
        state_dir=tmp_path, clock=lambda: now[0]
    ) as telemetry:
        controller = Controller("svc", bake=1_000, rollback_after=3, clock=lambda: now[0],
                                policy=HealthPolicy(default_rules(min_samples=20), window=30))
        controller.advance(Step(Phase.HYBRID, Rollout(percent=50, compare=0)))
        for _ in range(3):
            traffic(100)
            now[0] += 10
            assert controller.tick().action == "held"
        rates["simplified"] = 0.5  # the spike
        spike_at = time.perf_counter()
        evaluations = 0
        tick = None
        for _ in range(10):
            traffic(100)
            now[0] += 10
            evaluations += 1
            tick = controller.tick()
            if tick.action == "rolled_back":
                break
        elapsed = time.perf_counter() - spike_at
        assert tick is not None and tick.action == "rolled_back"
        assert evaluations == 3  # exactly rollback_after consecutive unhealthy verdicts
        print(f"spike -> rollback: {evaluations} evaluations, {elapsed * 1000:.0f} ms wall time")
        record = FileStore.in_dir(tmp_path).snapshot().records["svc"]
        assert record.phase is Phase.LEGACY
        assert record.history[-1].actor == "controller"
        assert "error_rate" in record.history[-1].reason
        assert telemetry.counts("aurum.migration.transitions", reason="health", to="legacy") == 1
        span = telemetry.spans("transition svc")[-1]
        (event,) = span.events
        assert event.attributes["aurum.migration.to"] == "legacy"  # type: ignore[index]
        # After the rollback every call goes to legacy.
        before = telemetry.counts("aurum.migration.calls", implementation="simplified")
        traffic(50)
        assert telemetry.counts("aurum.migration.calls", implementation="simplified") == before
    assert "svc: hybrid -> legacy" in caplog.text


def test_inconclusive_never_advances_nor_rolls_back(tmp_path: Path) -> None:
    now = [0.0]
    traffic = noisy_service({"legacy": 0.0, "simplified": 1.0}, random.Random(3))
    with testing.capture(state_dir=tmp_path, clock=lambda: now[0]):
        controller = Controller("svc", bake=0, rollback_after=1, clock=lambda: now[0],
                                policy=HealthPolicy(default_rules(min_samples=1_000), window=30))
        controller.advance(Step(Phase.HYBRID, Rollout(percent=50, compare=0)))
        for _ in range(5):
            traffic(20)  # every simplified call fails, but 20 calls are far below 1,000
            now[0] += 10
            tick = controller.tick()
            assert tick.action == "held" and tick.verdict.status.value == "inconclusive"
        assert FileStore.in_dir(tmp_path).snapshot().records["svc"].phase is Phase.HYBRID


def test_manual_rollback_one_step_or_to_legacy(tmp_path: Path) -> None:
    with testing.capture(state_dir=tmp_path):
        controller = Controller("svc")
        controller.advance(DEFAULT_PLAN[2])
        step_back = controller.rollback(to_legacy=False, actor="alice", reason="looks odd")
        assert (step_back.to_phase, step_back.rollout.percent) == (Phase.HYBRID, 10)
        assert step_back.actor == "alice"
        assert controller.rollback().to_phase is Phase.LEGACY


def test_two_controllers_on_the_same_verdict_write_once(tmp_path: Path) -> None:
    import threading

    now = [0.0]
    traffic = noisy_service({"legacy": 0.0, "simplified": 0.0}, random.Random(11))
    both_judging = threading.Barrier(2, timeout=10)

    class Racing(Controller):
        racing = False

        def evaluate(self):  # type: ignore[no-untyped-def]
            verdict = super().evaluate()
            if self.racing:  # both have read the store before either writes
                self.racing = False
                both_judging.wait()
            return verdict

    with testing.capture(state_dir=tmp_path, clock=lambda: now[0]) as telemetry:
        policy = HealthPolicy(default_rules(min_samples=20), window=30)
        controllers = [Racing("svc", bake=5, clock=lambda: now[0], policy=policy, actor=actor)
                       for actor in ("east", "west")]
        controllers[0].advance(DEFAULT_PLAN[1])  # hybrid 10 %
        for controller in controllers:
            controller.tick()  # both observe the step
            controller.racing = True
        traffic(200)
        telemetry.wait_for_shadows()
        now[0] += 10
        actions: list[str] = []
        threads = [threading.Thread(target=lambda c=c: actions.append(c.tick().action))
                   for c in controllers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        # Both judged hybrid 10 % healthy and baked; exactly one write landed.
        assert sorted(actions) == ["advanced", "conflict"]
        history = FileStore.in_dir(tmp_path).snapshot().records["svc"].history
        assert [h.rollout.percent for h in history] == [10, 50]


def test_a_stale_rollout_is_a_conflict(tmp_path: Path) -> None:
    from aurum_otel import TransitionConflictError

    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(percent=50), actor="a", reason="r")
    with pytest.raises(TransitionConflictError, match="hybrid at 50%"):
        store.transition("svc", Phase.HYBRID, Rollout(percent=100), actor="b", reason="r",
                         expected=Phase.HYBRID, expected_rollout=Rollout(percent=10))


def test_configure_after_setup_keeps_the_health_reader(tmp_path: Path) -> None:
    """setup_telemetry() then configure(store=...) (the README's OpenFeature order) kept no health
    reader, so Controller(name).source raised. A subprocess: setup_telemetry sets the global
    providers, for good."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        from aurum_otel import FileStore, setup_telemetry
        from aurum_otel.control import Controller
        from aurum_otel.registry import configure, get_registry
        handle = setup_telemetry("t", otlp=False, metrics_file=False)
        reader = get_registry().health_reader
        assert reader is not None
        configure(store=FileStore.in_dir({str(tmp_path)!r}))
        assert get_registry().health_reader is reader
        assert Controller("m").source is reader
        print("kept")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "kept" in result.stdout, result.stderr[-2000:]

"""Paired statistics fed by the call path (issue 16.2): every shadowed call whose two sides both
finished is counted as a pair (who failed, who took longer), and the in-process reader hands them
to the paired rule."""

from __future__ import annotations

import time
from pathlib import Path

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.health import HealthPolicy
from aurum_otel.health.paired import PairedRule
from aurum_otel.health.verdict import Status


def _shadowing(tmp_path: Path, name: str) -> None:
    FileStore.in_dir(tmp_path).transition(name, Phase.HYBRID, Rollout(percent=0, compare=100),
                                          actor="t", reason="t")


def test_a_simplified_that_fails_on_inputs_legacy_handles_is_caught_pair_by_pair(
    tmp_path: Path,
) -> None:
    _shadowing(tmp_path, "paired")

    @migrated("paired")
    def price(i: int) -> int:
        if i % 100 == 0:
            raise ValueError("both fail on these")
        return i

    @price.simplified
    def _price(i: int) -> int:
        if i % 100 == 0 or i % 10 == 3:  # and simplified also on 10 % more
            raise ValueError("simplified fails")
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        telemetry.health.snapshot()
        for i in range(300):
            try:
                price(i)
            except ValueError:
                pass
        telemetry.wait_for_shadows()
        stats = telemetry.health.stats("paired", 300)
        verdict = HealthPolicy(PairedRule()).evaluate("paired", telemetry.health)
    assert stats.pairs is not None and stats.pairs.pairs == 300
    assert (stats.pairs.legacy_only_failed, stats.pairs.simplified_only_failed) == (0, 30)
    assert verdict.status is Status.UNHEALTHY, verdict
    assert "only simplified failed in 30" in " ".join(verdict.reasons)


def test_a_slower_simplified_is_caught_by_the_sign_test(tmp_path: Path) -> None:
    _shadowing(tmp_path, "slower")

    @migrated("slower")
    def load(i: int) -> int:
        time.sleep(0.003)
        return i

    @load.simplified
    def _load(i: int) -> int:
        time.sleep(0.015)  # 5x: +12 ms on legacy's 3 ms, a slowdown that matters
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        telemetry.health.snapshot()
        for i in range(40):
            load(i)
        telemetry.wait_for_shadows()
        stats = telemetry.health.stats("slower", 300)
        verdict = HealthPolicy(PairedRule()).evaluate("slower", telemetry.health)
    assert stats.pairs is not None and stats.pairs.slower >= 35
    assert verdict.status is Status.UNHEALTHY, verdict
    assert "slower" in " ".join(verdict.reasons)


def test_equal_implementations_are_healthy_pair_by_pair(tmp_path: Path) -> None:
    _shadowing(tmp_path, "same")

    @migrated("same")
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        telemetry.health.snapshot()
        for i in range(100):
            work(i)
        telemetry.wait_for_shadows()
        verdict = HealthPolicy(PairedRule()).evaluate("same", telemetry.health)
    assert verdict.status is not Status.UNHEALTHY, verdict

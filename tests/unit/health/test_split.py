"""Split integrity (issue 16.1): the authoritative split against the configured percent.

Configured 10 %, every call sharing one routing key (so 0 % served by simplified): the default
policy says unhealthy, naming the split; a correct split is healthy; too few calls, inconclusive.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, migrated, testing
from aurum_otel.health import (
    HealthPolicy,
    HealthReader,
    SideStats,
    SplitRule,
    SplitStats,
    Status,
    WindowStats,
)
from aurum_otel.health.file import split_from_steps, split_of_step
from aurum_otel.health.split import chi_squared
from aurum_otel.router import bucket
from tests.unit.health.fixed import Fixed

CALLS = 400


def _key_outside(name: str, percent: float) -> str:
    """A routing key whose bucket is not below ``percent``: every call with it goes to legacy."""
    return next(k for k in (f"user-{i}" for i in range(1000))
                if bucket(name, k) >= percent * 100)


def _run(tmp_path: Path, key_of: object, *, percent: float = 10) -> WindowStats:
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", Phase.HYBRID, Rollout(percent=percent, compare=100), actor="t",
                     reason="test")
    ticks = [0.0]
    since = store.snapshot().records["orders"].updated_at
    with testing.CapturedTelemetry(store=store) as telemetry:
        assert telemetry.registry is not None
        reader = HealthReader(telemetry.health.aggregator, clock=lambda: ticks[0],
                              wall=lambda: since + 1 + ticks[0],
                              split_of=split_from_steps(telemetry.registry.step_of))
        reader.snapshot()  # the controller's previous tick, just after the step began

        @migrated("orders", key=key_of)  # type: ignore[arg-type]
        def load(user: str) -> str:
            return user.upper()

        @load.simplified
        def _load_v2(user: str) -> str:
            return user.upper()

        served = [load(f"user-{i}") for i in range(CALLS)]
        telemetry.wait_for_shadows()  # every call also ran the other side, as a shadow
        ticks[0] = 60.0
        stats = reader.stats("orders", 300)
    assert len(served) == CALLS
    return stats


def test_one_routing_key_for_every_call_is_never_a_healthy_split(tmp_path: Path) -> None:
    """One key for every call: every call goes one way, and one key is too few to trust the
    split (by keys, see test_split_keys.py): inconclusive with that reason, never healthy."""
    constant = _key_outside("orders", 10)
    stats = _run(tmp_path, lambda user: constant)
    verdict = HealthPolicy().evaluate("orders", Fixed(stats))
    assert verdict.status is Status.INCONCLUSIVE
    (split,) = [r for r in verdict.results if r.rule == "split"]
    assert split.status is Status.INCONCLUSIVE
    assert split.samples == {"legacy": CALLS, "simplified": 0, "legacy_keys": 1,
                             "simplified_keys": 0}
    assert split.value == 0 and split.threshold == pytest.approx(0.1)
    assert "1 distinct routing key since the step began: too few to trust a 10 % split" in (
        split.message)
    assert "by calls 0.0% of 400" in split.message and "key extractor" in split.message
    # every other rule is content (shadows gave simplified its samples): nothing caught it before
    assert {r.rule: r.status for r in verdict.results if r.rule != "split"} == {
        "error_rate": Status.HEALTHY, "latency": Status.HEALTHY,
        "mismatch_rate": Status.HEALTHY}


def test_a_key_per_user_splits_as_configured(tmp_path: Path) -> None:
    stats = _run(tmp_path, lambda user: user)
    assert stats.split is not None and stats.split.calls == CALLS
    assert stats.split.keys == CALLS  # a key per call: judged by its 400 distinct keys
    (result,) = SplitRule().check(stats)
    assert result.status is Status.HEALTHY, result.message
    assert 0.05 < (result.value or 0) < 0.15
    assert "the split is as configured" in result.message
    assert "distinct routing keys" in result.message


def test_calls_of_the_previous_step_are_not_counted(tmp_path: Path) -> None:
    """Snapshots before the step began are not the split's baseline: 0 calls since, inconclusive."""
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", Phase.HYBRID, Rollout(percent=10, compare=0), actor="t",
                     reason="test")
    since = store.snapshot().records["orders"].updated_at
    ticks = [0.0]
    with testing.CapturedTelemetry(store=store) as telemetry:
        assert telemetry.registry is not None
        reader = HealthReader(telemetry.health.aggregator, clock=lambda: ticks[0],
                              wall=lambda: since - 10 + ticks[0],  # calls before the step
                              split_of=split_from_steps(telemetry.registry.step_of))
        reader.snapshot()

        @migrated("orders", key=lambda user: user)
        def load(user: str) -> str:
            return "legacy"

        for i in range(100):
            load(f"user-{i}")
        ticks[0] = 20.0  # the step began at 10 s: nothing was snapshotted since
        stats = reader.stats("orders", 300)
    assert stats.legacy.calls == 100
    assert stats.split is not None and stats.split.calls == 0
    (result,) = SplitRule().check(stats)
    assert result.status is Status.INCONCLUSIVE
    assert "0 authoritative calls" in result.message and "20 needed" in result.message


def _split(percent: float, legacy: float, simplified: float) -> WindowStats:
    return WindowStats("m", 300, SideStats(legacy), SideStats(simplified),
                       split=SplitStats(percent, legacy, simplified, 300, f"hybrid {percent:g}%"))


@pytest.mark.parametrize(("percent", "legacy", "simplified", "status", "words"), [
    (10, 400, 0, Status.UNHEALTHY, "sample-ratio mismatch"),
    (10, 360, 40, Status.HEALTHY, "as configured"),
    (10, 340, 60, Status.UNHEALTHY, "15.0% of 400"),  # chi2 = 11.1 > 10.83
    (10, 345, 55, Status.HEALTHY, "13.8% of 400"),  # chi2 = 6.25: within noise
    (50, 10, 5, Status.INCONCLUSIVE, "15 authoritative calls"),
    (1, 990, 0, Status.HEALTHY, "as configured"),
    (1, 300, 0, Status.INCONCLUSIVE, "expect only 3.0 on one side"),
    (0, 500, 0, Status.HEALTHY, "as configured"),
    (0, 499, 1, Status.UNHEALTHY, "configured 0 %"),  # any simplified call at 0 %
    (100, 1, 499, Status.UNHEALTHY, "configured 100 %"),
], ids=["served-0-of-10", "exact", "biased-bucket", "noise", "too-few", "1pct-enough",
        "1pct-too-few-expected", "legacy-phase", "legacy-phase-leak", "simplified-phase-leak"])
def test_split_rule_on_crafted_counts(percent: float, legacy: float, simplified: float,
                                      status: Status, words: str) -> None:
    (result,) = SplitRule().check(_split(percent, legacy, simplified))
    assert result.status is status, result.message
    assert words in result.message


def test_a_source_that_does_not_know_the_split_does_not_judge_it() -> None:
    (result,) = SplitRule().check(WindowStats("m", 300, SideStats(400), SideStats(0)))
    assert result.status is Status.HEALTHY and result.message.startswith("not judged")


def test_chi_squared_and_step_labels() -> None:
    assert chi_squared(0, 400, 0.1) == pytest.approx(44.444, rel=1e-3)
    assert chi_squared(0, 400, 0.0) == 0 and math.isinf(chi_squared(1, 400, 0.0))
    assert split_of_step("hybrid 10%/100%", 5.0) is not None
    assert split_of_step("hybrid 10%/100%", 5.0).percent == 10  # type: ignore[union-attr]
    assert split_of_step("legacy", 0.0).percent == 0  # type: ignore[union-attr]
    assert split_of_step("simplified").percent == 100  # type: ignore[union-attr]
    assert split_of_step("hybrid") is None and split_of_step("nonsense") is None


def test_bad_split_options_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"split.confidence.*\(0, 1\)"):
        HealthPolicy.from_yaml("rules: [{split: {confidence: 1}}]")
    policy = HealthPolicy.from_yaml("rules: [{split: {confidence: 0.99, min_samples: 50}}]")
    assert policy.rules.rules == (SplitRule(confidence=0.99, min_samples=50),)  # type: ignore[attr-defined]


def test_the_split_is_judged_through_the_shipped_wiring(tmp_path: Path) -> None:
    """testing.capture (like setup_telemetry) tells the in-process reader the configured split:
    one routing key for every call at 10 % reads inconclusive (too few keys), not healthy."""
    from aurum_otel import FileStore, Phase, Rollout, migrated, routing_key, testing
    from aurum_otel.health import HealthPolicy

    FileStore.in_dir(tmp_path).transition("one_key", Phase.HYBRID, Rollout(percent=10, compare=0),
                                          actor="t", reason="t")

    @migrated("one_key")
    def serve(i: int) -> int:
        return i

    @serve.simplified
    def _serve(i: int) -> int:
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        telemetry.health.snapshot()
        with routing_key("the-same-key-for-everyone"):
            for i in range(400):
                serve(i)
        verdict = HealthPolicy().evaluate("one_key", telemetry.health)
    assert verdict.status.value == "inconclusive", verdict
    assert "1 distinct routing key" in str(verdict.to_dict())

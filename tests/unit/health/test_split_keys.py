"""Split integrity by distinct routing keys (issue 16.1), through the real call path.

A key's calls all go one way, so a keyed split is judged on the distinct keys each side served
since the step began. The mutants of the issue are each caught here: a key extractor returning a
constant (too few keys: inconclusive, so the controller holds), a router that ignores the key
(keys served by both sides: unhealthy), a biased bucket (unhealthy). A correct router with a few
heavy keys is healthy by keys, where a test by calls would condemn it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aurum_otel.route as route_module
from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.health import (
    HealthPolicy,
    HealthReader,
    SideStats,
    SplitRule,
    SplitStats,
    Status,
    WindowStats,
)
from aurum_otel.health.file import split_from_steps
from aurum_otel.health.promql import routing_keys
from aurum_otel.router import BUCKETS, Decision, bucket, decide
from aurum_otel.telemetry.aggregate import KEYS_KEPT, Aggregator
from tests.unit.health.fixed import Fixed
from tests.unit.health.promtool import firing, needs_promtool, run_rule_tests

NAME = "orders"


def _stats(tmp_path: Path, keys: Iterator[str], *, percent: float = 10) -> WindowStats:
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=percent, compare=0), actor="t",
                     reason="test")
    since = store.snapshot().records[NAME].updated_at
    ticks = [0.0]
    with testing.CapturedTelemetry(store=store) as telemetry:
        assert telemetry.registry is not None
        reader = HealthReader(telemetry.health.aggregator, clock=lambda: ticks[0],
                              wall=lambda: since + 1 + ticks[0],
                              split_of=split_from_steps(telemetry.registry.step_of))
        reader.snapshot()

        @migrated(NAME, key=lambda user: user)
        def load(user: str) -> str:
            return "legacy"

        @load.simplified
        def _load(user: str) -> str:
            return "simplified"

        for user in keys:
            load(user)
        ticks[0] = 60.0
        return reader.stats(NAME, 300)


def _users(count: int, calls_each: int = 1) -> Iterator[str]:
    for _ in range(calls_each):
        yield from (f"user-{i}" for i in range(count))


def _split_result(stats: WindowStats) -> Any:
    (result,) = SplitRule().check(stats)
    return result


def test_a_key_extractor_returning_a_constant_is_too_few_keys_to_trust(tmp_path: Path) -> None:
    stats = _stats(tmp_path, ("the-same-key" for _ in range(400)))
    assert stats.split is not None and stats.split.keys == 1
    result = _split_result(stats)
    assert result.status is Status.INCONCLUSIVE
    assert "1 distinct routing key since the step began: too few to trust a 10 % split" in (
        result.message)
    assert "(50 needed)" in result.message and "check the key extractor" in result.message
    assert result.samples["legacy"] + result.samples["simplified"] == 400
    verdict = HealthPolicy().evaluate(NAME, Fixed(stats))
    assert verdict.status is Status.INCONCLUSIVE  # never healthy: the controller holds


def test_a_router_that_ignores_the_key_is_caught_by_keys(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def ignoring_key(state: Any, **kw: Any) -> Decision:
        kw.update(key=None, digest=None)  # the mutant: every call split at random
        return decide(state, **kw)

    monkeypatch.setattr(route_module, "decide", ignoring_key)
    stats = _stats(tmp_path, _users(200, calls_each=5))
    split = stats.split
    assert split is not None
    # by calls the split looks right (random per call at 10 %), by keys it is not
    assert 0.05 < split.simplified / split.calls < 0.15
    assert split.keys > 200  # keys served by both sides are counted on both
    result = _split_result(stats)
    assert result.status is Status.UNHEALTHY, result.message
    assert "distinct routing keys" in result.message and "sample-ratio mismatch" in result.message


def test_a_biased_bucket_is_caught_by_keys(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def biased(state: Any, **kw: Any) -> Decision:
        simplified = state.rollout.percent * (BUCKETS / 100) * 2.5 > bucket(NAME, kw["key"])
        phase_state = state.__class__(Phase.HYBRID, Rollout(percent=100 if simplified else 0))
        return decide(phase_state, **{**kw, "digest": None})

    monkeypatch.setattr(route_module, "decide", biased)
    stats = _stats(tmp_path, _users(400))
    result = _split_result(stats)
    assert result.status is Status.UNHEALTHY, result.message
    assert 0.18 < result.value < 0.32


def test_a_correct_split_with_heavy_keys_is_healthy_by_keys(tmp_path: Path) -> None:
    heavy = next(f"big-{i}" for i in range(1000) if bucket(NAME, f"big-{i}") >= 1000)

    def traffic() -> Iterator[str]:
        for i in range(600):  # the heavy key (on legacy) makes half the calls
            yield f"user-{i}"
            yield heavy

    stats = _stats(tmp_path, traffic())
    split = stats.split
    assert split is not None and split.keys == 601
    assert split.simplified / split.calls < 0.07  # by calls: far below 10 %
    result = _split_result(stats)
    assert result.status is Status.HEALTHY, result.message
    assert "of 601 distinct routing keys" in result.message
    assert "by calls" in result.message


def test_calls_without_a_key_are_still_judged_by_calls(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=10, compare=0), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:

        @migrated(NAME)
        def load(i: int) -> int:
            return i

        @load.simplified
        def _load(i: int) -> int:
            return i

        for i in range(400):
            load(i)
        stats = telemetry.health.stats(NAME, 300)
    assert stats.split is not None and stats.split.keys == 0
    result = _split_result(stats)
    assert "authoritative calls" in result.message and "routing keys" not in result.message


def test_the_aggregator_counts_distinct_keys_per_step_and_side() -> None:
    aggregator = Aggregator()
    for digest in (1, 2, 2, 3):
        aggregator.record_key("m", 10, digest == 3, digest)
    keys = aggregator.routing_keys()["m"]
    assert (keys.percent, keys.legacy, keys.simplified) == (10, 2, 1)
    aggregator.record_key("m", 50, True, 9)  # a new step starts afresh
    keys = aggregator.routing_keys()["m"]
    assert (keys.percent, keys.legacy, keys.simplified) == (50, 0, 1)
    for digest in range(KEYS_KEPT * 2):
        aggregator.record_key("m", 50, digest % 2 == 0, digest)
    keys = aggregator.routing_keys()["m"]
    assert keys.legacy + keys.simplified == KEYS_KEPT  # bounded: the first keys of the step
    assert abs(keys.legacy - keys.simplified) <= 2


# promtool: the generated alert judges a keyed split by keys, as the Python rule does.
# name -> (legacy calls, simplified calls, legacy keys, simplified keys) in the 5-minute window
KEYED = {
    "keyed_one": ("0+10x40", "0x40", "1x40", None),  # one key: too few, never fires
    "keyed_biased": ("0+15x40", "0+5x40", "300x40", "100x40"),  # 25 % of keys at 10 %
    "keyed_heavy": ("0+19x40", "0+1x40", "540x40", "60x40"),  # 5 % by calls, 10 % by keys
    "keyed_both_ways": ("0+18x40", "0+2x40", "200x40", "90x40"),  # keys served by both sides
}
KEYED_FIRING = {"keyed_biased", "keyed_both_ways"}


def _keyed_series() -> list[dict[str, str]]:
    role = 'aurum_migration_role="authoritative",aurum_migration_outcome="success"'
    out = []
    for name, (legacy, simplified, legacy_keys, simplified_keys) in KEYED.items():
        for impl, calls, keys in (("legacy", legacy, legacy_keys),
                                  ("simplified", simplified, simplified_keys)):
            labels = f'aurum_migration_name="{name}",aurum_migration_implementation="{impl}"'
            out.append({"series": f"aurum_migration_calls_total{{{labels},{role}}}",
                        "values": calls})
            if keys is not None:
                out.append({"series": f"aurum_migration_routing_keys{{{labels}}}",
                            "values": keys})
        out.append({"series": f'aurum_migration_rollout_percent{{aurum_migration_name="{name}"}}',
                    "values": "10x40"})
    return out


def _keyed_python(name: str) -> Status:
    legacy, simplified, legacy_keys, simplified_keys = KEYED[name]

    def last(values: str | None) -> float:
        if values is None:
            return 0.0
        start, _, rest = values.partition("+")
        step = rest.split("x")[0] if rest else "0"
        return float(start.split("x")[0]) + (20 * float(step) if rest else 0)

    split = SplitStats(10, last(legacy), last(simplified), 300, "hybrid 10%/0%",
                       legacy_keys=last(legacy_keys), simplified_keys=last(simplified_keys))
    stats = WindowStats(name, 300, SideStats(split.legacy), SideStats(split.simplified),
                        split=split)
    return _split_result(stats).status  # type: ignore[no-any-return]


@needs_promtool
def test_the_generated_alert_judges_a_keyed_split_by_keys(tmp_path: Path) -> None:
    alerts = firing("authoritative split differs from the configured percent "
                    "(sample-ratio mismatch at 0.999)", KEYED_FIRING)
    run_rule_tests(tmp_path, HealthPolicy(SplitRule()), _keyed_series(),
                   {"AurumMigrationSplit": alerts})
    statuses = {name: _keyed_python(name) for name in KEYED}
    assert {n for n, s in statuses.items() if s is Status.UNHEALTHY} == KEYED_FIRING
    assert statuses["keyed_one"] is Status.INCONCLUSIVE
    assert statuses["keyed_heavy"] is Status.HEALTHY


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, None])
def test_a_key_count_that_is_not_a_count_is_inconclusive(bad: float | None) -> None:
    split = SplitStats(10, 360, 40, 300, "hybrid 10%/0%", legacy_keys=90,
                       simplified_keys=bad)
    stats = WindowStats(NAME, 300, SideStats(360), SideStats(40), split=split)
    problem = stats.problem()
    assert problem is not None and problem.startswith("simplified routing keys")
    verdict = HealthPolicy().evaluate(NAME, Fixed(stats))
    assert verdict.status is Status.INCONCLUSIVE


@needs_promtool
def test_keys_seen_by_many_processes_are_not_counted_many_times(tmp_path: Path) -> None:
    """Ten processes each saw the same 60 sticky keys, 3 of them on simplified (5 % at a
    configured 10 %: noise for 60 keys, chi-squared 1.67). Summed, 30 of 600 would read
    chi-squared 16.7 > 10.83 and condemn a correct router; the rules count one process's keys."""
    role = 'aurum_migration_role="authoritative",aurum_migration_outcome="success"'
    name = 'aurum_migration_name="fleet"'
    series = [
        {"series": f'aurum_migration_calls_total{{{name},aurum_migration_implementation='
                   f'"legacy",{role}}}', "values": "0+95x40"},
        {"series": f'aurum_migration_calls_total{{{name},aurum_migration_implementation='
                   f'"simplified",{role}}}', "values": "0+5x40"},
        {"series": f'aurum_migration_rollout_percent{{{name}}}', "values": "10x40"},
    ]
    for process in range(10):
        for implementation, keys in (("legacy", 57), ("simplified", 3)):
            series.append({"series": f'aurum_migration_routing_keys{{{name},aurum_migration_'
                                     f'implementation="{implementation}",instance="p{process}"}}',
                           "values": f"{keys}x40"})
    exprs = [
        {"expr": "aurum:migration_split_keys:sum", "eval_time": "10m",
         "exp_samples": [{"labels": 'aurum:migration_split_keys:sum{aurum_migration_name="fleet"}',
                          "value": 60}]},
        {"expr": routing_keys("fleet"), "eval_time": "10m", "exp_samples": [
            {"labels": '{aurum_migration_name="fleet",aurum_migration_implementation="legacy"}',
             "value": 57},
            {"labels": '{aurum_migration_name="fleet",aurum_migration_implementation="simplified"}',
             "value": 3}]}]
    run_rule_tests(tmp_path, HealthPolicy(SplitRule()), series, {"AurumMigrationSplit": []},
                   exprs)
    split = SplitStats(10, 1900, 100, 300, "hybrid 10%/0%", legacy_keys=57, simplified_keys=3)
    (python,) = SplitRule().check(WindowStats("fleet", 300, SideStats(1900), SideStats(100),
                                              split=split))
    assert python.status is Status.HEALTHY, python.message

"""Paired shadow statistics (issue 16.2): McNemar's test on discordant pairs and a sign test on
per-pair latency, both as the one-sided normal statistic with continuity correction
``(c - b - 1) / sqrt(b + c)`` (what PromQL can compute, so the generated alert is the same test);
the sample counts each needs beside the population rules (the figures in the note), on expected
counts (no randomness): the smallest number of calls (shadow pairs; in a shadow step every call
runs both sides, so the population rule has as many per side) at which each rule first says
unhealthy, in steps of 10.
"""

from __future__ import annotations

import pytest

from aurum_otel.health import (
    ErrorRateRule,
    HealthPolicy,
    PairedRule,
    PairStats,
    SideStats,
    Status,
    WindowStats,
)
from aurum_otel.health.paired import sign_z
from tests.unit.health.fixed import Fixed


def _population(n: int, legacy: float, simplified: float) -> Status:
    stats = WindowStats("m", 300, SideStats(n, round(n * legacy)),
                        SideStats(n, round(n * simplified)))
    return ErrorRateRule().evaluate(stats)[0]


def _paired(n: int, legacy_only: float, simplified_only: float) -> Status:
    pairs = PairStats(n, round(n * legacy_only), round(n * simplified_only))
    return PairedRule().errors(pairs, 300, "crafted").status


def _first(judge: object, *args: float) -> int | None:
    return next((n for n in range(1, 20_001, 10)
                 if judge(n, *args) is Status.UNHEALTHY), None)  # type: ignore[operator]


@pytest.mark.parametrize(("legacy", "simplified", "legacy_only", "simplified_only",
                          "population", "paired"), [
    # 1 % -> 4 % (under the 5 % cap), failures independent of the input
    (0.01, 0.04, 0.01 * 0.96, 0.04 * 0.99, 621, 341),
    # the same, the inputs legacy fails on failing simplified too (the usual case)
    (0.01, 0.04, 0.0, 0.03, 621, 251),
    # 2 % -> 4 %, correlated: an eighth of the calls
    (0.02, 0.04, 0.0, 0.02, 3021, 381),
    # 1 % -> 11 %: above the 5 % cap the population rule is about as quick
    (0.01, 0.11, 0.01 * 0.89, 0.11 * 0.99, 81, 91),
    (0.01, 0.11, 0.0, 0.10, 81, 81),
], ids=["3pt-independent", "3pt-correlated", "2pt-correlated", "10pt-independent",
        "10pt-correlated"])
def test_calls_needed_paired_versus_population(legacy: float, simplified: float,
                                               legacy_only: float, simplified_only: float,
                                               population: int, paired: int) -> None:
    assert _first(_population, legacy, simplified) == population
    assert _first(_paired, legacy_only, simplified_only) == paired


def test_a_uniform_slowdown_is_found_by_the_sign_test_in_eight_pairs() -> None:
    """Every pair 1.5-2x slower: 8 pairs (z = 7 / sqrt(8) = 2.47 > 2.33; 7 pairs give 2.27),
    where the population rule needs 20 calls per side (and a p95 ratio above 1.5)."""
    def pairs(n: int) -> PairStats:
        return PairStats(n, 0, 0, n, 0, ((1.0, 0), (1.25, 0), (1.5, 0), (2.0, n),
                                         (float("inf"), n)))
    rule = PairedRule(max_ratio=1.25, min_samples=1, min_increase=0)
    assert rule.latency(pairs(7), 300, "x").status is Status.HEALTHY
    found = rule.latency(pairs(8), 300, "x")
    assert found.status is Status.UNHEALTHY
    assert found.message == ("simplified slower in 100% of 8 pairs (sign test z = 2.47, "
                             "significant above 2.33), median ratio 1.8x (at most 1.25x)")
    assert found.value == pytest.approx(1.75)


def test_noise_is_not_a_slowdown() -> None:
    half = PairStats(400, 3, 3, 200, 200, ((1.0, 200), (2.0, 400), (float("inf"), 400)))
    errors, latency = PairedRule().check(WindowStats("m", 300, pairs=half))
    assert errors.status is Status.HEALTHY and latency.status is Status.HEALTHY
    assert "only simplified failed in 3 and only legacy in 3 of 400 pairs" in errors.message


def test_without_pair_counts_the_rule_does_not_judge() -> None:
    policy = HealthPolicy.from_yaml("rules: [{paired: {max_ratio: 1.25}}]")
    verdict = policy.evaluate("m", Fixed(WindowStats("m", 300, source="in-process")))
    assert verdict.status is Status.HEALTHY
    assert verdict.reasons == ["paired: not judged: no shadow pairs from in-process in the window"]


def test_sign_z_is_mcnemars_statistic_with_continuity_correction() -> None:
    assert sign_z(30, 0) == pytest.approx(29 / 30 ** 0.5)
    assert sign_z(12, 4) == pytest.approx(7 / 4)
    assert sign_z(3, 3) == pytest.approx(-1 / 6 ** 0.5)
    assert sign_z(0, 0) == float("-inf")  # no discordant pair: no evidence either way
    assert sign_z(2600, 2400) > 2.33 > sign_z(2580, 2420)


def test_the_error_test_needs_significance_and_the_increase() -> None:
    rule = PairedRule()
    # 12 against 4 in 400 pairs: +2 points, z = 7/4 = 1.75: not significant at 99 %
    quiet = rule.errors(PairStats(400, 4, 12), 300, "x")
    assert quiet.status is Status.HEALTHY
    assert "McNemar z = 1.75" in quiet.message
    # 30 against 10 in 4,000 pairs: z = 19/sqrt(40) = 3.0, but +0.5 point, under +1
    small = rule.errors(PairStats(4000, 10, 30), 300, "x")
    assert small.status is Status.HEALTHY and small.value == pytest.approx(0.005)
    # 30 against 0 in 300 pairs: z = 5.29 and +10 points
    worse = rule.errors(PairStats(300, 0, 30), 300, "x")
    assert worse.status is Status.UNHEALTHY and worse.value == pytest.approx(0.1)
    assert worse.message == ("only simplified failed in 30 and only legacy in 0 of 300 pairs: "
                             "+10.0% (McNemar z = 5.29, significant above 2.33; at most +1%)")
    none = rule.errors(PairStats(300, 0, 0), 300, "x")
    assert none.status is Status.HEALTHY and none.message == (
        "only simplified failed in 0 and only legacy in 0 of 300 pairs: +0.0% (no pair where "
        "only one side failed; at most +1%)")


def test_a_slowdown_counts_only_where_it_matters() -> None:
    """The latency rule's min_increase (5 ms) for pairs: the median ratio's extra time on
    legacy's median latency. 1.75x of 0.4 ms is +0.3 ms (a shadow thread's overhead on a very
    short call): healthy, saying why; 1.75x of 20 ms is +15 ms: unhealthy; unknown: inconclusive."""
    slow = PairStats(100, 0, 0, 100, 0, ((1.5, 0), (2.0, 100), (float("inf"), 100)))
    rule = PairedRule()
    tiny = rule.latency(slow, 300, "x", legacy_p50=0.0004)
    assert tiny.status is Status.HEALTHY
    assert tiny.message.endswith("but about +0.3 ms on legacy's median 0.4 ms: under the 5 ms "
                                 "that counts (min_increase)")
    assert rule.latency(slow, 300, "x", legacy_p50=0.020).status is Status.UNHEALTHY
    unknown = rule.latency(slow, 300, "x")  # slower, but whether it matters cannot be told
    assert unknown.status is Status.INCONCLUSIVE and "median latency is unknown" in (
        unknown.message)
    assert PairedRule(min_increase=0).latency(slow, 300, "x").status is Status.UNHEALTHY
    assert HealthPolicy.from_yaml("rules: [{paired: {min_increase: 0.05}}]").rules.rules == (  # type: ignore[attr-defined]
        PairedRule(min_increase=0.05),)


def test_legacys_median_is_asked_only_for_a_significant_slowdown() -> None:
    """On the Prometheus source each quantile is a query: healthy pairs need none."""
    class Backend:
        asked = 0

        def quantile(self, implementation: object, q: float) -> float | None:
            Backend.asked += 1
            return 0.020

        def query(self, q: float) -> str:
            return "q"

    even = PairStats(400, 0, 0, 200, 200, ((1.0, 200), (2.0, 400), (float("inf"), 400)))
    slow = PairStats(400, 0, 0, 400, 0, ((1.5, 0), (2.0, 400), (float("inf"), 400)))
    PairedRule().check(WindowStats("m", 300, pairs=even, backend=Backend()))
    assert Backend.asked == 0
    _, latency = PairedRule().check(WindowStats("m", 300, pairs=slow, backend=Backend()))
    assert Backend.asked == 1 and latency.status is Status.UNHEALTHY

"""Paired statistics in PromQL (issue 16): the Prometheus source's queries and the generated alert,
run by ``promtool test rules`` on crafted series of the exported pair counters, agree with the
Python rule (the same one-sided McNemar and sign statistics, thresholds and minimum samples).

Series: one sample every 15 s for 10 minutes; the window is 5 minutes (20 samples), so ``0+9x40``
is 180 pairs in the window. ``aurum_migration_pairs_total`` carries ``aurum_migration_failed``
(``none|legacy|simplified|both``) and ``aurum_migration_slower`` (``simplified|legacy|tie``);
``aurum_migration_pair_ratios_total`` is cumulative by ``le`` (see telemetry/meters.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from aurum_otel.health import (
    ConfiguredSplit,
    HealthPolicy,
    PairedRule,
    PairStats,
    SideStats,
    Status,
    WindowStats,
)
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.health.promql import duration, median_ratio, pair_ratios, pairs, routing_keys
from tests.unit.health.fixed import Fixed
from tests.unit.health.promtool import firing as promtool_firing
from tests.unit.health.promtool import needs_promtool, run_rule_tests

LES = ("0.25", "0.5", "0.67", "0.8", "0.9", "1", "1.1", "1.25", "1.5", "2", "3", "4", "+Inf")
SIDES = ("failed", "slower")

# name -> (pairs per 15 s by (failed, slower), pairs per 15 s at or under each le (cumulative))
Case = tuple[dict[tuple[str, str], float], dict[str, float]]


def _ratios(**at: float) -> dict[str, float]:
    """Cumulative per-sample counts: each bound takes the count of the last one given below it."""
    out, last = {}, 0.0
    for le in LES:
        last = at.get("le_" + le.replace(".", "_").replace("+", ""), last)
        out[le] = last
    return out


CASES: dict[str, Case] = {
    # simplified fails alone on a tenth of the inputs: c = 40, b = 0 of 200, z = 6.17, +20 points
    "errors": ({("none", "simplified"): 4, ("none", "legacy"): 4, ("simplified", "simplified"): 1,
                ("simplified", "legacy"): 1}, _ratios(le_1=5, le_1_1=10)),
    # simplified slower in 9 of 10 pairs, median ratio 2.375
    "slow": ({("none", "simplified"): 9, ("none", "legacy"): 1},
             _ratios(le_1=1, le_2=2, le_3=10)),
    # the same, equal sides (and a pair both failed): nothing
    "healthy": ({("none", "simplified"): 5, ("none", "legacy"): 5, ("both", "tie"): 1},
                _ratios(le_0_9=3, le_1=6, le_1_1=11)),
    # 20 against 10 discordant pairs: +5 points, but z = 1.64 (not significant at 99 %)
    "noisy": ({("none", "simplified"): 4.5, ("none", "legacy"): 4.5,
               ("simplified", "simplified"): 1, ("legacy", "legacy"): 0.5},
              _ratios(le_1=5, le_1_1=10.5)),
    # significant (10 against 0: z = 2.85) but +0.5 point of 2,000 pairs, under +1
    "small": ({("none", "simplified"): 50, ("none", "legacy"): 49.5,
               ("simplified", "legacy"): 0.5}, _ratios(le_1=50, le_1_1=100)),
    # too few pairs: 10 in the window, every one simplified-only failed and slower
    "few": ({("simplified", "simplified"): 0.5}, _ratios(le_4=0.5)),
}
FIRING = {"errors", "slow"}
# The statistics alone: no minimum extra time (see test_a_slowdown_that_does_not_matter_...)
RULE = PairedRule(min_increase=0)
# "born": the series appear at 7m30s, their first sample already holding 200 pairs of which 40
# only simplified failed: counted (a series' first sample is not lost)
BORN: Case = ({("none", "simplified"): 80, ("none", "legacy"): 80,
               ("simplified", "simplified"): 20, ("simplified", "legacy"): 20},
              _ratios(le_1=100, le_1_1=200))


def _values(per_sample: float, born: bool) -> str:
    return f"_x30 {per_sample * 10:g}x10" if born else f"0+{per_sample:g}x40"


def _series() -> list[dict[str, str]]:
    out = []
    for name, (counts, ratios), born in [*((n, c, False) for n, c in CASES.items()),
                                         ("born", BORN, True)]:
        for failed in ("none", "legacy", "simplified", "both"):
            for slower in ("simplified", "legacy", "tie"):
                out.append({"series": f'aurum_migration_pairs_total{{aurum_migration_name='
                                      f'"{name}",aurum_migration_failed="{failed}",'
                                      f'aurum_migration_slower="{slower}"}}',
                            "values": _values(counts.get((failed, slower), 0), born)})
        for le, count in ratios.items():
            out.append({"series": f'aurum_migration_pair_ratios_total{{aurum_migration_name='
                                  f'"{name}",le="{le}"}}', "values": _values(count, born)})
    return out


def _window(case: Case, samples: float = 20) -> PairStats:
    """The window's figures as the Python rule gets them (``samples`` increments of each)."""
    counts, ratios = case

    def where(index: int, value: str) -> float:
        return sum(v for k, v in counts.items() if k[index] == value) * samples

    return PairStats(sum(counts.values()) * samples, where(0, "legacy"), where(0, "simplified"),
                     where(1, "simplified"), where(1, "legacy"),
                     tuple((float(le), count * samples) for le, count in ratios.items()))


def _python(name: str) -> Status:
    case, samples = (BORN, 10) if name == "born" else (CASES[name], 20)
    stats = WindowStats(name, 300, pairs=_window(case, samples))
    return HealthPolicy(RULE).evaluate(name, Fixed(stats)).status


@needs_promtool
def test_the_alert_and_the_source_queries_agree_with_the_python_rule(tmp_path: Path) -> None:
    firing = FIRING | {"born"}
    alerts = promtool_firing("simplified worse than legacy on the same inputs (shadow pairs: "
                             "McNemar or sign test at 0.99)", firing)
    w = duration(300)
    exprs = []
    for name in [*CASES, "born"]:
        stats = _window(BORN, 10) if name == "born" else _window(CASES[name])
        by_side = [("legacy", "none", stats.legacy_only_failed),
                   ("simplified", "none", stats.simplified_only_failed)]
        exprs.append({"expr": f"sum by (aurum_migration_failed) "
                              f"({pairs(w, 'aurum_migration_failed', name)})",
                      "eval_time": "10m", "exp_samples": [
                          {"labels": f'{{aurum_migration_failed="{failed}"}}', "value": value}
                          for failed, _, value in by_side if value]
                      + [{"labels": '{aurum_migration_failed="none"}',
                          "value": stats.pairs - stats.legacy_only_failed
                          - stats.simplified_only_failed - _both(name)}]
                      + ([{"labels": '{aurum_migration_failed="both"}', "value": _both(name)}]
                         if _both(name) else [])
                      + [{"labels": f'{{aurum_migration_failed="{failed}"}}', "value": 0}
                         for failed, _, value in by_side if not value]
                      + ([] if _both(name) else
                         [{"labels": '{aurum_migration_failed="both"}', "value": 0}])})
        exprs.append({"expr": f"round({median_ratio(w, 'aurum_migration_name', name)}, 0.0001)",
                      "eval_time": "10m", "exp_samples": [
                          {"labels": f'{{aurum_migration_name="{name}"}}',
                           "value": round(_median(stats), 4)}]})
    run_rule_tests(tmp_path, HealthPolicy(RULE), _series(),
                   {"AurumMigrationPaired": alerts}, exprs)
    # the Python rule, on the very figures the queries returned above
    condemned = {name for name in [*CASES, "born"] if _python(name) is Status.UNHEALTHY}
    assert condemned == firing
    assert _python("few") is Status.INCONCLUSIVE


def _both(name: str) -> float:
    counts = CASES[name][0] if name in CASES else BORN[0]
    return sum(v for k, v in counts.items() if k[0] == "both") * 20


def _median(stats: PairStats) -> float:
    from aurum_otel.health import histogram_quantile

    median = histogram_quantile(0.5, stats.ratios)
    assert median is not None
    return median


class _Session(requests.Session):
    def __init__(self, answers: Mapping[str, Sequence[tuple[dict[str, str], float]]]) -> None:
        super().__init__()
        self.answers = answers
        self.queries: list[str] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        query = kwargs["params"]["query"]
        self.queries.append(query)
        found = self.answers.get(query, [])
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps({"status": "success", "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1, str(v)]} for m, v in found]}}).encode()
        return response


def _side(failed: str, slower: str) -> dict[str, str]:
    return {"aurum_migration_failed": failed, "aurum_migration_slower": slower}


def test_the_prometheus_source_reads_pairs_and_judges_them_as_in_process() -> None:
    w = duration(300)
    by = "aurum_migration_failed, aurum_migration_slower"
    answers = {
        pairs(w, by, "orders"): [(_side("none", "simplified"), 150), (_side("none", "legacy"), 110),
                                 (_side("simplified", "simplified"), 30),
                                 (_side("legacy", "legacy"), 2), (_side("both", "tie"), 8)],
        pair_ratios(w, "aurum_migration_name", "orders"): [
            ({"le": le, "aurum_migration_name": "orders"}, count) for le, count in
            (("0.9", 50), ("1", 110), ("1.1", 150), ("1.5", 250), ("+Inf", 300))],
    }
    source = PrometheusSource("http://p.invalid", session=_Session(answers))
    stats = source.stats("orders", 300)
    assert stats.pairs == PairStats(300, 2, 30, 180, 112, ((0.9, 50), (1.0, 110), (1.1, 150),
                                                           (1.5, 250), (float("inf"), 300)))
    verdict = HealthPolicy(PairedRule()).evaluate("orders", source)
    errors, latency = verdict.results
    # 30 against 2 of 300: +9.3 points, z = 27/sqrt(32) = 4.77: as in process on the same figures
    assert errors.status is Status.UNHEALTHY and errors.value == pytest.approx(28 / 300)
    assert errors.query == pairs(w, by, "orders")
    assert latency.status is Status.HEALTHY  # slower in 62 %, but the median ratio is 1.15
    assert latency.query == median_ratio(w, "aurum_migration_name", "orders")
    in_process = HealthPolicy(PairedRule()).evaluate(
        "orders", Fixed(WindowStats("orders", 300, pairs=stats.pairs)))
    assert [(r.status, r.message) for r in in_process.results] == [
        (r.status, r.message) for r in verdict.results]


def test_no_pairs_in_the_window_is_none_and_not_judged() -> None:
    w = duration(300)
    zero = {pairs(w, "aurum_migration_failed, aurum_migration_slower", "orders"): [
        (_side("none", "tie"), 0.0)]}
    for answers in ({}, zero):
        source = PrometheusSource("http://p.invalid", session=_Session(answers))
        assert source.stats("orders", 300).pairs is None
        verdict = HealthPolicy(PairedRule()).evaluate("orders", source)
        assert verdict.status is Status.HEALTHY
        assert "not judged: no shadow pairs" in verdict.reasons[0]


def test_routing_keys_come_from_the_gauge_and_are_zero_without_it() -> None:
    told = ConfiguredSplit(10, None, "hybrid 10%/0%")
    keys = {routing_keys("orders"): [
        ({"aurum_migration_name": "orders", "aurum_migration_implementation": "legacy"}, 36),
        ({"aurum_migration_name": "orders", "aurum_migration_implementation": "simplified"}, 4)]}
    for answers, expected in ((keys, (36, 4)), ({}, (0, 0))):
        source = PrometheusSource("http://p.invalid", session=_Session(answers),
                                  split_of=lambda name: told)
        split = source.stats("orders", 300).split
        assert split is not None
        assert (split.legacy_keys, split.simplified_keys) == expected
    # one process's keys (the one that saw the most), never a sum over processes
    assert routing_keys("orders").startswith(
        'sum by (aurum_migration_name, aurum_migration_implementation) (aurum_migration_routing_keys'
        '{aurum_migration_name="orders"} and ignoring(aurum_migration_implementation) topk by '
        '(aurum_migration_name) (1, ')


# legacy's latency histogram per sample (cumulative at 0.0005, 0.01, 0.025, +Inf)
LEGACY_LATENCY = {"slow_big": (0, 0, 10, 10),  # median ~17.5 ms: +24 ms at 2.375x
                  "slow_tiny": (10, 10, 10, 10)}  # median 0.25 ms: +0.3 ms at 2.375x


@needs_promtool
def test_a_slowdown_that_does_not_matter_is_no_alarm_in_either_evaluator(tmp_path: Path) -> None:
    """The slow case's pairs (9 in 10 slower, median ratio 2.375) on a 17.5 ms call fire; on a
    0.25 ms call (+0.3 ms: a shadow thread's overhead) neither evaluator condemns."""
    base = ('traces_span_metrics_duration_seconds_bucket{{span_name="migrate {name}",'
            'aurum_migration_name="{name}",aurum_migration_implementation="legacy",'
            'aurum_migration_outcome="success",aurum_migration_role="authoritative",le="{le}"}}')
    series = []
    for name, latency in LEGACY_LATENCY.items():
        counts, ratios = CASES["slow"]
        for (failed, slower), count in counts.items():
            series.append({"series": f'aurum_migration_pairs_total{{aurum_migration_name="{name}"'
                                     f',aurum_migration_failed="{failed}",aurum_migration_slower='
                                     f'"{slower}"}}', "values": _values(count, False)})
        for le, count in ratios.items():
            series.append({"series": f'aurum_migration_pair_ratios_total{{aurum_migration_name='
                                     f'"{name}",le="{le}"}}', "values": _values(count, False)})
        for le, count in zip(("0.0005", "0.01", "0.025", "+Inf"), latency, strict=True):
            series.append({"series": base.format(name=name, le=le),
                           "values": _values(count, False)})
    alerts = promtool_firing("simplified worse than legacy on the same inputs (shadow pairs: "
                             "McNemar or sign test at 0.99)", ["slow_big"])
    run_rule_tests(tmp_path, HealthPolicy(PairedRule()), series,
                   {"AurumMigrationPaired": alerts})
    statuses, messages = {}, {}
    for name, latency in LEGACY_LATENCY.items():
        buckets = tuple((bound, count * 20.0) for bound, count in zip(
            (0.0005, 0.01, 0.025, float("inf")), latency, strict=True))
        stats = WindowStats(name, 300, legacy=SideStats(200, 0, buckets),
                            pairs=_window(CASES["slow"]))
        _, latency_result = PairedRule().check(stats)
        statuses[name], messages[name] = latency_result.status, latency_result.message
    assert statuses == {"slow_big": Status.UNHEALTHY, "slow_tiny": Status.HEALTHY}
    assert "about +0.34 ms on legacy's median 0.25 ms: under the 5 ms that counts" in (
        messages["slow_tiny"])

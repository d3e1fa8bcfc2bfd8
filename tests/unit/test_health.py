from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, migrated, testing
from aurum_otel.health import (
    ErrorRateRule,
    HealthPolicy,
    LatencyRule,
    SideStats,
    Status,
    WindowStats,
    default_rules,
    histogram_quantile,
)

BOUNDS = (0.01, 0.025, 0.05, 0.1, float("inf"))


def side(calls: float, errors: float = 0, fast: bool = True) -> SideStats:
    # All calls in the 10-25 ms bucket (fast) or the 50-100 ms bucket (slow).
    counts = (0, calls, calls, calls, calls) if fast else (0, 0, 0, calls, calls)
    return SideStats(calls, errors, tuple(zip(BOUNDS, counts, strict=True)))


def stats(legacy: SideStats, simplified: SideStats, matches: float = 0, mismatches: float = 0
          ) -> WindowStats:
    return WindowStats("m", 300, legacy, simplified, matches, mismatches)


class Source:
    name = "crafted"

    def __init__(self, value: WindowStats) -> None:
        self.value = value

    def stats(self, migration: str, window: float) -> WindowStats:
        return self.value


CASES = [
    pytest.param(stats(side(100, 1), side(100, 1), 100, 0), Status.HEALTHY, None, id="healthy"),
    pytest.param(stats(side(10_000, 0), side(10_000, 300)), Status.UNHEALTHY, "error_rate",
                 id="errors-above-legacy-plus-one-point"),
    pytest.param(stats(side(10_000, 600), side(10_000, 600)), Status.UNHEALTHY, "error_rate",
                 id="errors-above-five-percent"),
    pytest.param(stats(side(100), side(100, fast=False)), Status.UNHEALTHY, "latency",
                 id="p95-above-one-and-a-half"),
    pytest.param(stats(side(100), side(100), 997, 3), Status.UNHEALTHY, "mismatch_rate",
                 id="mismatch-above-0.1-percent"),
    pytest.param(stats(side(100), side(5)), Status.INCONCLUSIVE, None,
                 id="too-few-simplified-samples"),
    pytest.param(stats(side(5), side(5, 5)), Status.INCONCLUSIVE, None,
                 id="even-all-errors-are-inconclusive-below-min-samples"),
]


@pytest.mark.parametrize(("data", "status", "failing_rule"), CASES)
def test_verdicts_on_crafted_data(data: WindowStats, status: Status, failing_rule: str | None
                                  ) -> None:
    verdict = HealthPolicy().evaluate("m", Source(data))
    assert verdict.status is status
    assert {r.rule for r in verdict.results} == {"error_rate", "latency", "mismatch_rate", "split"}
    if failing_rule:
        (bad,) = [r for r in verdict.results if r.status is Status.UNHEALTHY]
        assert bad.rule == failing_rule
        assert bad.value is not None and bad.threshold is not None and bad.value > bad.threshold
        assert bad.window == 300 and bad.samples["legacy"] >= 100
        assert verdict.reasons and verdict.reasons[0].startswith(failing_rule)


def test_error_rule_uses_the_absolute_bound_without_a_legacy_baseline() -> None:
    _, [result] = ErrorRateRule().evaluate(stats(side(0), side(1_000, 100)))
    assert result.status is Status.UNHEALTHY and "no legacy baseline" in result.message


def test_a_breach_within_noise_is_not_unhealthy_unless_confidence_is_zero() -> None:
    noisy = stats(side(200, 2), side(200, 7))  # 3.5 % vs 1 %: above 2 %, but n = 200
    status, [result] = ErrorRateRule().evaluate(noisy)
    assert status is Status.HEALTHY and "within noise" in result.message
    assert ErrorRateRule(confidence=0).evaluate(noisy)[0] is Status.UNHEALTHY


def test_composition_with_and_and_or() -> None:
    data = stats(side(100), side(100, fast=False))
    strict = ErrorRateRule() & LatencyRule(max_ratio=1.5)
    lenient = ErrorRateRule() & (LatencyRule(max_ratio=1.5) | LatencyRule(max_ratio=10))
    assert strict.evaluate(data)[0] is Status.UNHEALTHY
    assert lenient.evaluate(data)[0] is Status.HEALTHY


def test_rules_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "window: 60\nmin_samples: 10\nrules:\n"
        "  - error_rate: {max_rate: 0.02, confidence: 0}\n"
        "  - any: [{latency: {max_ratio: 2}}, {mismatch_rate: {}}]\n"
    )
    policy = HealthPolicy.from_yaml(path)
    assert policy.window == 60
    verdict = policy.evaluate("m", Source(stats(side(10), side(10, 1))))
    assert verdict.status is Status.UNHEALTHY  # 10 % > 2 %, judged at 10 samples


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [{error_rate: {max_rate: high}}]", "max_rate"),
        ("rules: [{speed: {}}]", "error_rate, latency, mismatch_rate"),
        ("rules: [{latency: {quantile: 2}}]", "quantile"),
        ("window: -5", "window"),
        ("rules: [{error_rate: {max_rte: 0.1}}]", "max_rte"),
        ("rules: {", "valid YAML"),
        ("- 1\n- 2", "a mapping"),
    ],
)
def test_bad_rule_yaml_says_what_to_change(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        HealthPolicy.from_yaml(text)


def test_histogram_quantile_matches_prometheus_interpolation() -> None:
    buckets = ((0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (float("inf"), 100.0))
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.35)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.5, ()) is None


def test_in_process_reader_measures_the_real_call_stream(tmp_path: Path) -> None:
    now = [0.0]
    failing = {"on": False}

    @migrated("m")
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        if failing["on"] and i % 5 == 0:
            raise RuntimeError("boom")
        return i

    FileStore.in_dir(tmp_path).transition("m", Phase.HYBRID, Rollout(percent=50, compare=0),
                                          actor="t", reason="t")
    with testing.capture(state_dir=tmp_path, clock=lambda: now[0]) as telemetry:
        policy = HealthPolicy(rules=default_rules(min_samples=20), window=60)
        telemetry.health.stats("m", 60)  # baseline snapshot at t=0
        for i in range(200):
            try:
                work(i)
            except RuntimeError:
                pass
        now[0] = 30
        verdict = policy.evaluate("m", telemetry.health)
        assert verdict.status is Status.HEALTHY, verdict.reasons
        data = telemetry.health.stats("m", 60)
        assert data.legacy.calls + data.simplified.calls == 200
        failing["on"] = True
        now[0] = 100  # the first 200 calls leave the 60 s window
        for i in range(200):
            try:
                work(i)
            except RuntimeError:
                pass
        verdict = policy.evaluate("m", telemetry.health)
        assert verdict.status is Status.UNHEALTHY
        window = telemetry.health.stats("m", 60)
        assert window.legacy.calls + window.simplified.calls == 200
        assert window.simplified.error_rate == pytest.approx(0.2, abs=0.08)


# --- unusable figures (issue 13.14) --------------------------------------------------------------

_BAD = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -0.5])
_FIELDS = ["legacy.calls", "legacy.errors", "simplified.calls", "simplified.errors", "matches",
           "mismatches"]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
       st.lists(st.tuples(st.sampled_from(_FIELDS), _BAD), min_size=1, max_size=4))
def test_non_finite_negative_or_missing_figures_are_inconclusive(
    calls: int, errors: int, compared: int, bad: list[tuple[str, float]]
) -> None:
    """Whatever else the figures say, one unusable figure never moves a migration."""
    figures: dict[str, float] = {
        "legacy.calls": calls, "legacy.errors": min(errors, calls) / 10,
        "simplified.calls": calls, "simplified.errors": min(errors, calls),
        "matches": compared, "mismatches": compared / 2,
    }
    for field, value in bad:
        figures[field] = value
    data = WindowStats(
        "m", 300,
        SideStats(figures["legacy.calls"], figures["legacy.errors"]),
        SideStats(figures["simplified.calls"], figures["simplified.errors"]),
        figures["matches"], figures["mismatches"])
    for policy in (HealthPolicy(), HealthPolicy(ErrorRateRule() | LatencyRule())):
        verdict = policy.evaluate("m", Source(data))
        assert verdict.status is Status.INCONCLUSIVE, verdict.reasons
        assert "cannot be judged" in " ".join(verdict.reasons)


def test_a_none_figure_is_missing_and_inconclusive() -> None:
    data = WindowStats("m", 300, side(100), SideStats(None, 0))  # type: ignore[arg-type]
    verdict = HealthPolicy().evaluate("m", Source(data))
    assert verdict.status is Status.INCONCLUSIVE and "missing" in verdict.reasons[0]


def test_a_corrupt_metrics_file_figure_is_inconclusive(tmp_path: Path) -> None:
    """The file source reads a non-count as NaN: inconclusive, never 'healthy 0.00 %'."""
    from aurum_otel.health.file import FileHealthSource

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"m_migration": {"implementations": {
        "legacy": {"calls": 100, "errors": 0},
        "simplified": {"calls": "lots", "errors": 5}}}}))
    verdict = HealthPolicy().evaluate("m", _Cumulative(FileHealthSource(path)))
    assert verdict.status is Status.INCONCLUSIVE, verdict.reasons


class _Cumulative:
    name = "file"

    def __init__(self, source: Any) -> None:
        self.source = source

    def stats(self, migration: str, window: float) -> WindowStats:
        return self.source.stats(migration, 0)  # type: ignore[no-any-return]

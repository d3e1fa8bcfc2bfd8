"""The report's figures from the metrics file: what each plot's points say, in the plot's units."""

from __future__ import annotations

import math

import pytest

from aurum_otel.report.filedata import from_section
from tests.unit.report.helpers import T0, flush, history, section


def points(series: object) -> dict[float, float]:
    return dict(series.points)  # type: ignore[attr-defined]


def test_rates_per_bucket_in_the_plots_units() -> None:
    data = from_section("orders", section([
        (T0 + 1, flush((100, 2, 1), (50, 5, 3), match=40, mismatch=10)),
        (T0 + 21, flush((20, 0, 1), (0, 0, 1))),
    ]), history(), start=T0, end=T0 + 30, source="file test")
    legacy_calls, simplified_calls = (points(s) for s in data.calls)
    assert legacy_calls[T0 + 5] == 10.0          # 100 runs in a 10 s bucket
    assert simplified_calls[T0 + 5] == 5.0
    assert legacy_calls[T0 + 15] == 0.0          # an empty bucket: zero runs ...
    errors = {s.key: points(s) for s in data.error_rate}
    assert errors["legacy"][T0 + 5] == 2.0       # 2 of 100, in percent
    assert errors["simplified"][T0 + 5] == 10.0
    assert math.isnan(errors["legacy"][T0 + 15])  # ... and a gap in every rate, not zero
    assert math.isnan(errors["simplified"][T0 + 25])
    assert points(data.mismatch[0])[T0 + 5] == 20.0  # 10 of 50 completed comparisons
    observed = points(data.split[0])
    assert round(observed[T0 + 5], 3) == round(50 / 150 * 100, 3)


def test_latency_quantiles_and_ratio_in_milliseconds() -> None:
    data = from_section("orders", section([(T0 + 1, flush((100, 0, 1), (100, 0, 3)))]), (),
                        start=T0, end=T0 + 9, source="file test")
    latency = {s.label: points(s)[T0 + 5] for s in data.latency}
    # all legacy calls in (1 ms, 5 ms], all simplified in (10 ms, 50 ms]: linear interpolation
    assert latency["legacy p50"] == pytest.approx(3.0)
    assert latency["simplified p95"] == pytest.approx(48.0)
    assert points(data.ratio[0])[T0 + 5] == latency["simplified p95"] / latency["legacy p95"]


def test_steps_become_bands_and_transitions_markers_with_actor_and_reason() -> None:
    data = from_section("orders", section([]), history(), start=T0, end=T0 + 100,
                        source="file test")
    assert [(b.start, b.end, b.label, b.percent) for b in data.bands] == [
        (T0, T0 + 10, "legacy", 0.0),
        (T0 + 10, T0 + 40, "hybrid 0% / compare 100%", 0.0),
        (T0 + 40, T0 + 70, "hybrid 50% / compare 25%", 50.0),
        (T0 + 70, T0 + 100, "legacy", 0.0),
    ]
    assert [(m.at, m.actor, m.reason) for m in data.markers] == [
        (T0 + 10, "alice", "start the shadow run"),
        (T0 + 40, "controller", "healthy for 60 s"),
        (T0 + 70, "controller", "error rate 12 % above 5 %"),
    ]
    configured = data.split[1]
    assert configured.key == "configured"
    assert (T0 + 55, 50.0) not in configured.points
    assert (T0 + 40, 50.0) in configured.points and (T0 + 70, 50.0) in configured.points


def test_a_period_before_the_transitions_shows_the_phase_then() -> None:
    data = from_section("orders", section([]), history(), start=T0 - 50, end=T0 + 5,
                        source="file test")
    assert [b.label for b in data.bands] == ["legacy"]
    assert data.markers == ()


def test_bad_figures_in_the_file_are_not_plotted_as_counts() -> None:
    bad = section([(T0 + 1, flush((10, 0, 1), (10, 0, 1)))])
    bad["windows"][0]["implementations"]["legacy"]["calls"] = "many"
    bad["windows"].append("not a bucket")
    data = from_section("orders", bad, (), start=T0, end=T0 + 9, source="file test")
    assert points(data.calls[0])[T0 + 5] == 0.0
    assert points(data.calls[1])[T0 + 5] == 1.0

"""Experiment controls (issue 15.7, as Scientist and laboratory have them): ``run_if=`` decides per
call whether to shadow, ``clean=`` normalises results before comparing and reporting, ``ignore=``
classifies known differences as ``ignored`` (counted apart, never a mismatch for health)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.errors import MigrationDefinitionError


@pytest.fixture
def shadowing(tmp_path: Path) -> Path:
    FileStore.in_dir(tmp_path).transition("m", Phase.HYBRID, Rollout(percent=0, compare=100),
                                          actor="t", reason="t")
    return tmp_path


def _comparisons(telemetry: testing.CapturedTelemetry) -> dict[str, float]:
    found: dict[str, float] = {}
    for attrs, point in telemetry.points("aurum.migration.comparisons"):
        if point.value:
            key = str(attrs["aurum.migration.comparison"])
            found[key] = found.get(key, 0) + point.value
    return found


def test_run_if_decides_per_call_whether_to_shadow(shadowing: Path) -> None:
    seen: list[int] = []

    @migrated("m", run_if=lambda n: n % 2 == 0)
    def fetch(n: int) -> int:
        return n

    @fetch.simplified
    def _fetch(n: int) -> int:
        seen.append(n)
        return n

    with testing.capture(state_dir=shadowing) as telemetry:
        assert [fetch(n) for n in range(6)] == list(range(6))
        telemetry.wait_for_shadows()
        assert sorted(seen) == [0, 2, 4]
        assert _comparisons(telemetry) == {"match": 3}


def test_a_raising_run_if_means_no_shadow_and_never_reaches_the_caller(shadowing: Path) -> None:
    def broken(n: int) -> bool:
        raise RuntimeError("bad predicate")

    @migrated("m", run_if=broken)
    def fetch(n: int) -> int:
        return n

    @fetch.simplified
    def _fetch(n: int) -> int:
        return n

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fetch(1) == 1
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {}


def test_clean_normalises_both_results_before_comparing(shadowing: Path) -> None:
    @migrated("m", clean=lambda row: {k: v for k, v in row.items() if k != "fetched_at"})
    def fetch() -> dict[str, Any]:
        return {"id": 1, "fetched_at": 100.0}

    @fetch.simplified
    def _fetch() -> dict[str, Any]:
        return {"id": 1, "fetched_at": 200.0}

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fetch() == {"id": 1, "fetched_at": 100.0}  # the caller's result is not cleaned
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"match": 1}


def test_ignored_differences_are_counted_apart_and_never_logged_as_mismatches(
    shadowing: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def known_rounding(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return abs(a["total"] - b["total"]) < 0.01

    @migrated("m", ignore=[known_rounding])
    def total(x: float) -> dict[str, Any]:
        return {"total": x}

    @total.simplified
    def _total(x: float) -> dict[str, Any]:
        return {"total": round(x, 2) + (1 if x > 10 else 0)}

    with caplog.at_level(logging.INFO, logger="aurum_otel"), \
            testing.capture(state_dir=shadowing) as telemetry:
        total(1.234)  # differs by rounding only: ignored
        total(20.001)  # a real difference: mismatch
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"ignored": 1, "mismatch": 1}
    assert len([r for r in caplog.records if r.name == "aurum_otel.mismatch"]) == 1


def test_ignored_comparisons_never_count_against_the_mismatch_rule(shadowing: Path) -> None:
    @migrated("m", ignore=lambda a, b: True)
    def fetch(n: int) -> int:
        return n

    @fetch.simplified
    def _fetch(n: int) -> int:
        return n + 1

    with testing.capture(state_dir=shadowing) as telemetry:
        for n in range(30):
            fetch(n)
        telemetry.wait_for_shadows()
        telemetry.health.snapshot()
        stats = telemetry.health.stats("m", 300)
        assert (stats.mismatches, stats.matches) == (0, 0)
        assert _comparisons(telemetry) == {"ignored": 30}


@pytest.mark.parametrize("options", [{"run_if": 3}, {"clean": "x"}, {"ignore": [1]}])
def test_bad_controls_are_refused_at_decoration(options: dict[str, Any]) -> None:
    with pytest.raises(MigrationDefinitionError):
        migrated("m", **options)

"""Tests that kill the surviving mutants of the shadows' promises (scripts/mutation.sh shadow).

Promises held here: the shadow is called exactly as the caller called (keyword arguments of an
async function, the instance of a method whose legacy side is the shadow); every shadow that
does not match is reported to ``on_mismatch`` with the kind of error and the named reason; an
iterator result is read only up to its bound, and one of exactly the bound is still compared; a
comparator that says "incomparable" is counted as such, never as a mismatch; the shadow's time is
its own; the memory budget's variable accepts only positive numbers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.compare import ComparisonResult
from aurum_otel.registry import get_registry
from aurum_otel.shadow import DEFAULT_MAX_BYTES
from aurum_otel.shadow.executor import MAX_BYTES_VARIABLE, default_max_bytes
from aurum_otel.shadow.snapshot import MAX_ITEMS


def _hybrid(tmp_path: Path, percent: float) -> Path:
    FileStore.in_dir(tmp_path).transition("m", Phase.HYBRID, Rollout(percent=percent, compare=100),
                                          actor="t", reason="t")
    return tmp_path


class Reports:
    """An ``on_mismatch`` hook that keeps what it is given."""

    def __init__(self) -> None:
        self.reports: list[Any] = []

    def on_mismatch(self, report: Any) -> None:
        self.reports.append(report)


def test_an_async_shadow_gets_the_callers_keyword_arguments(tmp_path: Path) -> None:
    @migrated("m")
    async def total(a: int, *, b: int) -> int:
        return a + b

    @total.simplified
    async def _total(a: int, *, b: int) -> int:
        return b + a

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        assert asyncio.run(total(1, b=2)) == 3
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1
        assert telemetry.counts("aurum.migration.comparisons") == 1


def test_a_legacy_shadow_of_a_method_runs_on_its_own_instance(tmp_path: Path) -> None:
    class Cart:
        def __init__(self) -> None:
            self.items = [3, 4]

        @migrated("m")
        def total(self) -> int:
            return sum(self.items)

        @total.simplified
        def _total(self) -> int:
            return sum(sorted(self.items))

    with testing.capture(state_dir=_hybrid(tmp_path, 100)) as telemetry:  # legacy is the shadow
        assert Cart().total() == 7
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1
        assert telemetry.counts("aurum.migration.comparisons") == 1


def test_on_mismatch_gets_the_error_kinds_and_the_reason(tmp_path: Path) -> None:
    hook = Reports()

    @migrated("m", hooks=hook)
    def parse(text: str) -> int:
        raise ValueError("legacy refuses")

    @parse.simplified
    def _parse(text: str) -> int:
        raise SystemExit(3)

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        with pytest.raises(ValueError):
            parse("x")
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="error") == 1
    (report,) = hook.reports
    assert report.authoritative_error == "ValueError"
    assert report.shadow_error == "SystemExit"
    assert "reason: shadow_raised" in report.differences


def test_on_mismatch_gets_a_plain_mismatch(tmp_path: Path) -> None:
    hook = Reports()

    @migrated("m", hooks=hook)
    def answer() -> int:
        return 1

    @answer.simplified
    def _answer() -> int:
        return 2

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        assert answer() == 1
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
    (report,) = hook.reports
    assert report.authoritative_error is None and report.shadow_error is None
    assert not any(d.startswith("reason:") for d in report.differences)


def test_a_long_iterator_result_is_read_only_up_to_its_bound(tmp_path: Path) -> None:
    read = itertools.count()

    def counted(n: int) -> Iterator[int]:
        for i in range(n):
            next(read)
            yield i

    @migrated("m")
    def rows() -> Iterator[int]:
        return iter(range(3))

    @rows.simplified
    def _rows() -> Iterator[int]:
        return counted(3 * MAX_ITEMS)

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        assert list(rows()) == [0, 1, 2]
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="skipped") == 1
    assert next(read) <= MAX_ITEMS + 1  # items the comparison took from the shadow's iterator


def test_an_iterator_result_of_exactly_the_bound_is_compared(tmp_path: Path) -> None:
    @migrated("m")
    def rows() -> Iterator[int]:
        return iter(range(MAX_ITEMS))

    @rows.simplified
    def _rows() -> Iterator[int]:
        return iter(range(MAX_ITEMS))

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        assert sum(1 for _ in rows()) == MAX_ITEMS
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


def test_an_incomparable_verdict_of_the_comparator_is_never_a_mismatch(tmp_path: Path) -> None:
    def cannot_tell(a: Any, b: Any) -> ComparisonResult:
        return ComparisonResult(False, (), comparable=False, reason="value: opaque handles")

    @migrated("m", comparator=cannot_tell)
    def handle() -> int:
        return 1

    @handle.simplified
    def _handle() -> int:
        return 1

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        assert handle() == 1
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="skipped") == 1
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 0


def test_the_shadows_duration_is_its_own_run_time(tmp_path: Path) -> None:
    @migrated("m")
    def quick() -> int:
        return 1

    @quick.simplified
    def _quick() -> int:
        return 1

    with testing.capture(state_dir=_hybrid(tmp_path, 0)) as telemetry:
        quick()
        telemetry.wait_for_shadows()
        instruments = get_registry().instruments()
        shadow = [totals for key, totals in instruments.aggregator.calls().items()
                  if instruments.call_attributes(*key).get("aurum.migration.role") == "shadow"]
        assert sum(t.count for t in shadow) == 1
        assert 0 <= sum(t.seconds for t in shadow) < 1.0


@pytest.mark.parametrize("raw", ["0", "-5", "lots"])
def test_the_memory_budget_variable_takes_only_a_positive_number(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(MAX_BYTES_VARIABLE, raw)
    assert default_max_bytes() == DEFAULT_MAX_BYTES
    monkeypatch.setenv(MAX_BYTES_VARIABLE, "1")
    assert default_max_bytes() == 1

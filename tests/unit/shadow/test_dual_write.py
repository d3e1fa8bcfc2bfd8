"""Dual writes (issue 18.4): in hybrid a data migration's writes go to both stores, the
authoritative first; the other's failure is counted and reported, never raised."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing


def _hybrid(tmp_path: Path, percent: float = 0, compare: float = 0) -> Path:
    FileStore.in_dir(tmp_path).transition("orders", Phase.HYBRID,
                                          Rollout(percent=percent, compare=compare),
                                          actor="t", reason="t")
    return tmp_path


def _writers(primary: list[int], secondary: list[int], fail_rate: float = 0.0):  # type: ignore[no-untyped-def]
    rng = random.Random(7)

    @migrated("orders", dual_write=True)
    def save(order_id: int) -> int:
        primary.append(order_id)
        return order_id

    @save.simplified
    def _save_new(order_id: int) -> int:
        if rng.random() < fail_rate:
            raise ConnectionError("secondary store unavailable")
        secondary.append(order_id)
        return order_id

    return save


def test_a_thousand_writes_with_a_failing_secondary(tmp_path: Path) -> None:
    primary: list[int] = []
    secondary: list[int] = []
    save = _writers(primary, secondary, fail_rate=0.1)
    with testing.capture(state_dir=_hybrid(tmp_path)) as telemetry:
        for order_id in range(1000):
            assert save(order_id) == order_id  # no caller ever sees the secondary's failure
        failed = telemetry.counts("aurum.migration.calls", role="shadow", outcome="error")
        print(f"dual write: primary {len(primary)}, secondary {len(secondary)}, failed {failed:g}")
        assert primary == list(range(1000))
        assert len(secondary) + failed == 1000 and 60 <= failed <= 140
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == failed


def test_every_write_reaches_both_stores_before_the_call_returns(tmp_path: Path) -> None:
    primary: list[int] = []
    secondary: list[int] = []
    save = _writers(primary, secondary)
    with testing.capture(state_dir=_hybrid(tmp_path, compare=0)):  # compare does not thin writes
        for order_id in range(50):
            save(order_id)
            assert secondary[-1] == order_id  # already written: no waiting on shadows
    assert primary == secondary == list(range(50))


def test_live_writes_the_new_store_first(tmp_path: Path) -> None:
    order: list[str] = []

    @migrated("orders", dual_write=True)
    def save(order_id: int) -> None:
        order.append("old")

    @save.simplified
    def _save(order_id: int) -> None:
        order.append("new")

    with testing.capture(state_dir=_hybrid(tmp_path, percent=100)):
        save(1)
    assert order == ["new", "old"]


def test_dual_writes_happen_with_monitoring_off(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_MIGRATION_ORDERS_MONITORING", "0")
    primary: list[int] = []
    secondary: list[int] = []
    save = _writers(primary, secondary)
    with testing.capture(state_dir=_hybrid(tmp_path)):
        save(1)
    assert primary == secondary == [1]


@pytest.mark.parametrize("phase, expected", [(Phase.LEGACY, ([1], [])),
                                             (Phase.SIMPLIFIED, ([], [1]))])
def test_outside_hybrid_only_one_store_is_written(tmp_path: Path, phase: Phase,
                                                  expected: tuple[list[int], list[int]]) -> None:
    FileStore.in_dir(tmp_path).transition("orders", phase, Rollout(), actor="t", reason="t")
    primary: list[int] = []
    secondary: list[int] = []
    save = _writers(primary, secondary)
    with testing.capture(state_dir=tmp_path):
        save(1)
    assert (primary, secondary) == expected


def test_the_two_database_example_walks_every_stage() -> None:
    example = Path(__file__).parents[3] / "examples" / "dual_write_sqlite.py"
    result = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ramp-down" in result.stdout and "read mismatches so far 0" in result.stdout

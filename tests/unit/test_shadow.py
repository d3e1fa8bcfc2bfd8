from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.registry import get_registry
from aurum_otel.shadow import ShadowExecutor

SHADOW_ALL = Rollout(percent=0, compare=100)


@pytest.fixture
def shadowing(tmp_path: Path) -> Path:
    FileStore.in_dir(tmp_path).transition("m", Phase.HYBRID, SHADOW_ALL, actor="t", reason="t")
    return tmp_path


def test_shadow_does_not_add_to_caller_latency(shadowing: Path) -> None:
    @migrated("m")
    def fast() -> int:
        return 1

    @fast.simplified
    def _slow() -> int:
        time.sleep(0.3)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        started = time.perf_counter()
        assert fast() == 1
        assert time.perf_counter() - started < 0.1
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


def test_shadow_past_its_deadline_counts_as_timeout(shadowing: Path) -> None:
    release = threading.Event()

    @migrated("m", shadow_timeout=0.05)
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _hangs() -> int:
        release.wait(2)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fetch() == 1
        time.sleep(0.1)
        release.set()
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="timeout") == 1
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 0


def test_full_queue_drops_shadows_and_counts_them(shadowing: Path) -> None:
    release = threading.Event()

    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _blocks() -> int:
        release.wait(5)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        registry = get_registry()
        registry._shadows = ShadowExecutor(workers=1, queue_size=2)
        started = time.perf_counter()
        results = [fetch() for _ in range(10)]
        elapsed = time.perf_counter() - started
        release.set()
        telemetry.wait_for_shadows()
        assert results == [1] * 10 and elapsed < 0.5
        dropped = telemetry.counts("aurum.migration.comparisons", comparison="dropped")
        matched = telemetry.counts("aurum.migration.comparisons", comparison="match")
        assert dropped >= 7 and dropped + matched == 10


def test_raising_shadow_and_raising_comparator_never_reach_the_caller(shadowing: Path) -> None:
    def comparator(a: Any, b: Any) -> bool:
        raise ZeroDivisionError("comparator bug")

    @migrated("m", comparator=comparator)
    def fetch(x: int) -> int:
        return x

    @fetch.simplified
    def _fetch(x: int) -> int:
        if x == 0:
            raise KeyError("shadow bug")
        return x

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fetch(0) == 0
        assert fetch(1) == 1
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
        assert telemetry.counts("aurum.migration.comparisons", comparison="error") == 1
        assert telemetry.counts("aurum.migration.calls", role="shadow", outcome="error") == 1


def test_both_raising_the_same_error_is_a_match(shadowing: Path) -> None:
    @migrated("m")
    def fetch() -> int:
        raise LookupError("missing")

    @fetch.simplified
    def _fetch() -> int:
        raise LookupError("missing too")

    with testing.capture(state_dir=shadowing) as telemetry:
        with pytest.raises(LookupError, match="^missing$"):
            fetch()
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


def test_writes_are_not_shadowed_unless_they_opt_in(shadowing: Path) -> None:
    writes: list[str] = []

    @migrated("m", writes=True)
    def insert(row: str) -> None:
        writes.append(f"legacy {row}")

    @insert.simplified
    def _insert(row: str) -> None:
        writes.append(f"simplified {row}")

    opted_in = insert.with_options(shadow_writes=True)
    with testing.capture(state_dir=shadowing) as telemetry:
        insert("a")
        telemetry.wait_for_shadows()
        assert writes == ["legacy a"]
        assert telemetry.spans("shadow m") == []
        opted_in("b")
        telemetry.wait_for_shadows()
        assert writes == ["legacy a", "legacy b", "simplified b"]


def test_a_mutating_shadow_cannot_touch_the_callers_arguments_or_result(shadowing: Path) -> None:
    @migrated("m")
    def total(items: list[int]) -> dict[str, Any]:
        return {"sum": sum(items), "items": items}

    @total.simplified
    def _total(items: list[int]) -> dict[str, Any]:
        items.append(1_000)
        return {"sum": sum(items), "items": items}

    arguments = [1, 2, 3]
    with testing.capture(state_dir=shadowing) as telemetry:
        result = total(arguments)
        telemetry.wait_for_shadows()
        assert arguments == [1, 2, 3]
        assert result == {"sum": 6, "items": [1, 2, 3]}
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1


def test_a_caller_mutating_its_result_does_not_fake_a_mismatch(shadowing: Path) -> None:
    gate = threading.Event()

    @migrated("m")
    def fetch() -> list[int]:
        return [1]

    @fetch.simplified
    def _fetch() -> list[int]:
        gate.wait(2)
        return [1]

    with testing.capture(state_dir=shadowing) as telemetry:
        result = fetch()
        result.append(2)  # the caller owns its result
        gate.set()
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


def test_uncopyable_arguments_skip_the_shadow(shadowing: Path) -> None:
    lock = threading.Lock()
    ran: list[str] = []

    @migrated("m")
    def use(resource: Any) -> int:
        ran.append("legacy")
        return 1

    @use.simplified
    def _use(resource: Any) -> int:
        ran.append("simplified")
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        assert use(lock) == 1
        telemetry.wait_for_shadows()
        assert ran == ["legacy"]
        assert telemetry.counts("aurum.migration.comparisons", comparison="error") == 1


def test_async_shadow_timeout(shadowing: Path) -> None:
    import asyncio

    @migrated("m", shadow_timeout=0.05)
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _fetch() -> int:
        await asyncio.sleep(5)
        return 1

    async def scenario(telemetry: testing.CapturedTelemetry) -> None:
        started = time.perf_counter()
        assert await fetch() == 1
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(0.2)
        assert telemetry.counts("aurum.migration.comparisons", comparison="timeout") == 1

    with testing.capture(state_dir=shadowing) as telemetry:
        asyncio.run(scenario(telemetry))

"""The call-path promise, item by item (issue 12): no crash, no stall, nothing done twice, nothing
leaked, every shadow counted exactly once."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrate_client, migrated, testing
from aurum_otel.registry import get_registry
from aurum_otel.shadow import ShadowExecutor

SHADOW_ALL = Rollout(percent=0, compare=100)
SERVE_SIMPLIFIED = Rollout(percent=100, compare=0, fallback=True)


def _phase(state_dir: Path, rollout: Rollout = SHADOW_ALL, name: str = "m") -> Path:
    FileStore.in_dir(state_dir).transition(name, Phase.HYBRID, rollout, actor="t", reason="t")
    return state_dir


@pytest.fixture
def shadowing(tmp_path: Path) -> Path:
    return _phase(tmp_path)


def _comparisons(telemetry: testing.CapturedTelemetry) -> dict[str, float]:
    found: dict[str, float] = {}
    for attrs, point in telemetry.points("aurum.migration.comparisons"):
        result = str(attrs["aurum.migration.comparison"])
        found[result] = found.get(result, 0) + point.value
    return {key: value for key, value in found.items() if value}


def _shadow_reasons(telemetry: testing.CapturedTelemetry) -> list[str]:
    return [str((s.attributes or {}).get("aurum.migration.comparison.reason"))
            for s in telemetry.spans("shadow m")]


# ---------------------------------------------------------------- 1. close drains the shadows

class _Resource:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def read(self) -> int:
        if self.closed:
            raise RuntimeError("resource is closed")
        return 7


class _Client:
    def __init__(self, resource: _Resource, delay: float) -> None:
        self.resource = resource
        self.delay = delay

    def query(self) -> int:
        time.sleep(self.delay)
        return self.resource.read()

    def close(self) -> None:
        self.resource.close()


def test_closing_a_routed_client_first_drains_its_shadows(shadowing: Path) -> None:
    resource = _Resource()
    client = migrate_client("m", _Client(resource, 0.0), _Client(resource, 0.2), methods=("query",))
    with testing.capture(state_dir=shadowing) as telemetry:
        assert client.query() == 7
        client.close()  # the shadow is still running on the shared resource
        telemetry.wait_for_shadows()
        assert resource.closed
        assert _comparisons(telemetry) == {"match": 1}


def test_a_shadow_cut_off_by_close_is_never_a_mismatch(shadowing: Path) -> None:
    resource = _Resource()
    client = migrate_client("m", _Client(resource, 0.0), _Client(resource, 0.6), methods=("query",),
                            shadow_timeout=5.0)
    with testing.capture(state_dir=shadowing) as telemetry:
        assert client.query() == 7
        started = time.monotonic()
        client.close(timeout=0.1)  # a bounded wait: the shadow outlives it and then fails
        assert time.monotonic() - started < 0.5
        telemetry.wait_for_shadows()
        found = _comparisons(telemetry)
        assert "mismatch" not in found and sum(found.values()) == 1
        assert found == {"skipped": 1}
        assert _shadow_reasons(telemetry) == ["closed"]


def test_shadows_queued_behind_a_busy_worker_are_cancelled_at_close(shadowing: Path) -> None:
    resource = _Resource()
    client = migrate_client("m", _Client(resource, 0.0), _Client(resource, 0.3), methods=("query",))
    with testing.capture(state_dir=shadowing) as telemetry:
        get_registry()._shadows = ShadowExecutor(workers=1, queue_size=8)
        for _ in range(4):
            assert client.query() == 7
        client.close(timeout=1.0)
        telemetry.wait_for_shadows()
        found = _comparisons(telemetry)
        assert found.get("mismatch", 0) == 0 and sum(found.values()) == 4
        assert found.get("match", 0) >= 1 and found.get("skipped", 0) >= 1


# ---------------------------------------------------------------- 5. methods: the shadow's own self

class Cart:
    def __init__(self) -> None:
        self.total = 0

    @migrated("m")
    def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    @add.simplified
    def _add(self, amount: int) -> int:
        self.total += amount
        return self.total


def test_a_method_shadow_runs_on_its_own_copy_of_the_instance(shadowing: Path) -> None:
    with testing.capture(state_dir=shadowing) as telemetry:
        cart = Cart()
        assert cart.add(10) == 10
        telemetry.wait_for_shadows()
        assert cart.total == 10
        assert _comparisons(telemetry) == {"match": 1}


class LockedCart(Cart):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()  # neither pickle nor deepcopy can copy it


def test_an_instance_that_cannot_be_copied_is_not_shadowed_and_says_why(shadowing: Path) -> None:
    with testing.capture(state_dir=shadowing) as telemetry:
        cart = LockedCart()
        assert cart.add(10) == 10
        telemetry.wait_for_shadows()
        assert cart.total == 10
        assert _comparisons(telemetry) == {"skipped": 1}
        assert _shadow_reasons(telemetry) == ["uncopyable_instance"]


# ---------------------------------------------------------------- 6. async shadows off the loop

def test_an_async_shadow_that_blocks_never_stalls_the_callers_loop(shadowing: Path) -> None:
    @migrated("m", shadow_timeout=0.1)
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _blocks() -> int:
        time.sleep(0.6)  # a blocking call inside async code: a real-world bug
        return 1

    async def main() -> float:
        started = time.perf_counter()
        assert await fetch() == 1
        for _ in range(5):
            await asyncio.sleep(0.01)
        return time.perf_counter() - started

    with testing.capture(state_dir=shadowing) as telemetry:
        assert asyncio.run(main()) < 0.3
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"timeout": 1}


def test_base_exceptions_in_an_async_shadow_never_reach_the_caller(shadowing: Path) -> None:
    @migrated("m")
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _exits() -> int:
        await asyncio.sleep(0)
        raise SystemExit(3)

    async def main() -> int:
        value = await fetch()
        await asyncio.sleep(0.05)
        return value

    with testing.capture(state_dir=shadowing) as telemetry:
        assert asyncio.run(main()) == 1
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"error": 1}
        (shadow,) = telemetry.spans("shadow m")
        assert (shadow.attributes or {})["error.type"] == "SystemExit"


def test_async_shadows_pending_when_the_loop_ends_are_still_counted(shadowing: Path) -> None:
    @migrated("m")
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _slow() -> int:
        await asyncio.sleep(0.1)
        return 1

    async def main() -> None:
        for _ in range(3):
            assert await fetch() == 1  # the loop ends right after, the shadows still running

    with testing.capture(state_dir=shadowing) as telemetry:
        asyncio.run(main())
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"match": 3}
        assert len(telemetry.spans("shadow m")) == 3


# ---------------------------------------------------------------- 7. bounded memory, honest deadlines

def test_pending_shadows_hold_at_most_the_memory_budget(shadowing: Path) -> None:
    gate = threading.Event()

    @migrated("m")
    def fetch(payload: bytearray) -> int:
        return len(payload)

    @fetch.simplified
    def _hangs(payload: bytearray) -> int:
        gate.wait(5)
        return len(payload)

    with testing.capture(state_dir=shadowing) as telemetry:
        executor = get_registry()._shadows = ShadowExecutor(workers=1, queue_size=1024,
                                                            max_bytes=1 << 20)
        for _ in range(20):
            assert fetch(bytearray(256 * 1024)) == 256 * 1024
        assert executor.held_bytes() <= 1 << 20
        gate.set()
        telemetry.wait_for_shadows()
        found = _comparisons(telemetry)
        assert sum(found.values()) == 20
        assert 16 <= found["dropped"] < 20 and found.get("match", 0) >= 1


def test_a_hung_shadow_is_counted_timeout_at_its_deadline_and_frees_the_queue(
    shadowing: Path,
) -> None:
    gate = threading.Event()

    @migrated("m", shadow_timeout=0.05)
    def fetch(payload: bytearray) -> int:
        return len(payload)

    @fetch.simplified
    def _hangs(payload: bytearray) -> int:
        gate.wait(10)
        return len(payload)

    with testing.capture(state_dir=shadowing) as telemetry:
        executor = get_registry()._shadows = ShadowExecutor(workers=1, queue_size=64)
        for _ in range(5):
            fetch(bytearray(100_000))
        deadline = time.monotonic() + 2
        while _comparisons(telemetry).get("timeout", 0) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # The worker is still hung, yet all five are counted at their deadline and released.
        assert _comparisons(telemetry) == {"timeout": 5}
        assert executor.held_bytes() == 0
        gate.set()
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"timeout": 5}  # the late finish counts nothing twice


# ---------------------------------------------------------------- 8. fallback never re-runs writes

def test_fallback_never_reruns_a_write(tmp_path: Path) -> None:
    rows: list[str] = []

    @migrated("m", writes=True)
    def insert(order: str) -> None:
        rows.append(f"legacy:{order}")

    @insert.simplified
    def _insert(order: str) -> None:
        rows.append(f"simplified:{order}")
        raise ConnectionResetError("reply lost after commit")

    with (testing.capture(state_dir=_phase(tmp_path, SERVE_SIMPLIFIED)),
          pytest.raises(ConnectionResetError)):
        insert("o-1")
    assert rows == ["simplified:o-1"]


def test_idempotent_writes_may_opt_in_to_fallback(tmp_path: Path) -> None:
    rows: list[str] = []

    @migrated("m", writes=True, fallback_writes=True)
    def upsert(order: str) -> None:
        rows.append(f"legacy:{order}")

    @upsert.simplified
    def _upsert(order: str) -> None:
        raise ConnectionResetError("reply lost")

    with testing.capture(state_dir=_phase(tmp_path, SERVE_SIMPLIFIED)):
        upsert("o-1")
    assert rows == ["legacy:o-1"]


# ---------------------------------------------------------------- 9. the caller's contextvars

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def test_a_sync_shadow_sees_the_callers_context_variables(shadowing: Path) -> None:
    @migrated("m")
    def who() -> str:
        return request_id.get()

    @who.simplified
    def _who() -> str:
        return request_id.get()

    with testing.capture(state_dir=shadowing) as telemetry:
        token = request_id.set("r-42")
        try:
            assert who() == "r-42"
        finally:
            request_id.reset(token)
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"match": 1}


# ---------------------------------------------------------------- 10. recursion

def test_a_recursive_call_follows_the_outer_call_and_is_not_shadowed(shadowing: Path) -> None:
    @migrated("m")
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @fib.simplified
    def _fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fib(15) == 610
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 1
        assert _comparisons(telemetry) == {"match": 1}
        assert len(telemetry.spans("migrate m")) == 1


# ---------------------------------------------------------------- 11. results compared honestly

def test_equal_iterator_results_are_a_match(shadowing: Path) -> None:
    @migrated("m")
    def items() -> Iterator[int]:
        return iter([1, 2, 3])

    @items.simplified
    def _items() -> Iterator[int]:
        return iter([1, 2, 3])

    with testing.capture(state_dir=shadowing) as telemetry:
        assert list(items()) == [1, 2, 3]
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"match": 1}


def test_a_generator_result_is_skipped_with_its_own_reason(shadowing: Path) -> None:
    @migrated("m")
    def items() -> Iterator[int]:
        yield from (1, 2, 3)

    @items.simplified
    def _items() -> Iterator[int]:
        yield from (1, 2, 3)

    with testing.capture(state_dir=shadowing) as telemetry:
        assert list(items()) == [1, 2, 3]  # the caller's generator is untouched
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"skipped": 1}
        assert _shadow_reasons(telemetry) == ["uncopyable_result"]


class _Exploding:
    def __init__(self) -> None:
        self.items = [1]

    def __reduce__(self) -> Any:
        raise RuntimeError("cannot reduce")

    def __deepcopy__(self, memo: Any) -> Any:
        raise RuntimeError("cannot copy")


def test_a_result_whose_snapshot_raises_reaches_the_caller_unharmed(shadowing: Path) -> None:
    result = _Exploding()

    @migrated("m")
    def make() -> _Exploding:
        return result

    @make.simplified
    def _make() -> _Exploding:
        return _Exploding()

    with testing.capture(state_dir=shadowing) as telemetry:
        assert make() is result
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"skipped": 1}
        assert _shadow_reasons(telemetry) == ["uncopyable_result"]


def test_a_base_exception_in_a_sync_shadow_is_counted_and_its_span_ended(shadowing: Path) -> None:
    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _exits() -> int:
        raise SystemExit(2)

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fetch() == 1
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"error": 1}
        (shadow,) = telemetry.spans("shadow m")
        assert (shadow.attributes or {})["error.type"] == "SystemExit"


def test_the_guides_example_never_crashes_closing_its_client(tmp_path: Path) -> None:
    """``examples/migration_demo.py`` closed its sqlite client under a running shadow: SIGSEGV in
    about a third of the runs before close() drained the shadows."""
    import os
    import subprocess
    import sys

    example = Path(__file__).parents[3] / "examples" / "migration_demo.py"
    env = {**os.environ, "AURUM_STATE_DIR": str(tmp_path)}
    codes = [subprocess.run([sys.executable, str(example)], capture_output=True, env=env,
                            timeout=120).returncode for _ in range(8)]
    assert codes == [0] * 8


# ---------------------------------------------------------------- 12. mismatch lines rate-limited

def test_mismatch_log_lines_are_rate_limited_and_every_mismatch_counted(
    shadowing: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    @migrated("m")
    def value(i: int) -> dict[str, Any]:
        return {"dsn": f"postgres://u:hunter2@db/{i}"}

    @value.simplified
    def _value(i: int) -> dict[str, Any]:
        return {"dsn": f"postgres://u:hunter3@db/{i}"}

    with caplog.at_level(logging.INFO, logger="aurum_otel"), \
            testing.capture(state_dir=shadowing) as telemetry:
        for i in range(20):
            value(i)
        telemetry.wait_for_shadows()
        assert _comparisons(telemetry) == {"mismatch": 20}
    lines = [r for r in caplog.records if r.name == "aurum_otel.mismatch"]
    assert 1 <= len(lines) <= 6
    assert "hunter" not in caplog.text and "postgres" not in caplog.text


def test_the_inline_executor_finishes_every_shadow_before_the_call_returns(
    shadowing: Path,
) -> None:
    from aurum_otel.shadow import InlineExecutor

    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _slow() -> int:
        time.sleep(0.05)
        return 1

    async def main() -> int:
        return await afetch()

    @migrated("m")
    async def afetch() -> int:
        return 1

    @afetch.simplified
    async def _aslow() -> int:
        await asyncio.sleep(0.01)
        return 2

    with testing.capture(state_dir=shadowing) as telemetry:
        get_registry()._shadows = InlineExecutor()
        assert fetch() == 1
        assert _comparisons(telemetry) == {"match": 1}  # counted before the call returned
        assert asyncio.run(main()) == 1
        assert _comparisons(telemetry) == {"match": 1, "mismatch": 1}


# ---------------------------------------------------------------- survivors of mutation testing

def test_shadows_still_queued_at_shutdown_are_each_counted_dropped(shadowing: Path) -> None:
    gate = threading.Event()

    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _held() -> int:
        gate.wait(5)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        executor = get_registry()._shadows = ShadowExecutor(workers=1, queue_size=8)
        for _ in range(4):
            fetch()  # one holds the worker, three wait
        executor.shutdown()
        assert _comparisons(telemetry) == {"dropped": 4}  # the running one too: counted now
        gate.set()
        executor.join(5)
        assert _comparisons(telemetry) == {"dropped": 4}


def test_the_budget_counts_the_arguments_and_the_result(shadowing: Path) -> None:
    gate = threading.Event()

    @migrated("m")
    def fetch(payload: bytearray) -> bytearray:
        return bytearray(50_000)

    @fetch.simplified
    def _held(payload: bytearray) -> bytearray:
        gate.wait(5)
        return bytearray(50_000)

    with testing.capture(state_dir=shadowing):
        executor = get_registry()._shadows = ShadowExecutor(workers=1, queue_size=8)
        fetch(bytearray(100_000))
        assert 150_000 <= executor.held_bytes() < 151_000
        gate.set()


def test_closing_reports_whether_every_shadow_finished_in_time(shadowing: Path) -> None:
    resource = _Resource()
    client = migrate_client("m", _Client(resource, 0.0), _Client(resource, 0.4), methods=("query",))
    with testing.capture(state_dir=shadowing) as telemetry:
        client.query()
        assert client._self_scope.close(0.05) is False  # still running
        telemetry.wait_for_shadows()
    resource2 = _Resource()
    quick = migrate_client("m", _Client(resource2, 0.0), _Client(resource2, 0.0), methods=("query",))
    with testing.capture(state_dir=shadowing) as telemetry:
        quick.query()
        assert quick._self_scope.close(2.0) is True


def test_an_async_shadow_cut_off_at_its_deadline_says_timeout_error(shadowing: Path) -> None:
    @migrated("m", shadow_timeout=0.05)
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _slow() -> int:
        await asyncio.sleep(1)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        assert asyncio.run(fetch()) == 1
        telemetry.wait_for_shadows()
        (shadow,) = telemetry.spans("shadow m")
        attributes = shadow.attributes or {}
        assert attributes["error.type"] == "TimeoutError"
        assert attributes["aurum.migration.comparison"] == "timeout"
        assert _comparisons(telemetry) == {"timeout": 1}


def test_the_inline_executor_never_waits_past_a_shadows_deadline(shadowing: Path) -> None:
    from aurum_otel.shadow import InlineExecutor

    gate = threading.Event()

    @migrated("m", shadow_timeout=0.1)
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _hangs() -> int:
        gate.wait(5)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        get_registry()._shadows = InlineExecutor()
        started = time.monotonic()
        assert fetch() == 1
        assert time.monotonic() - started < 1.0
        assert _comparisons(telemetry) == {"timeout": 1}
        gate.set()


class _NoSize:
    """A result pickle refuses, deepcopy copies, and whose ``__sizeof__`` raises."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("no pickle")

    def __deepcopy__(self, memo: Any) -> _NoSize:
        return _NoSize()

    def __sizeof__(self) -> int:
        raise RuntimeError("no size")


def test_a_result_that_cannot_tell_its_size_is_still_shadowed_and_its_call_closed(
    shadowing: Path,
) -> None:
    @migrated("m", comparator=lambda a, b: True)
    def make() -> _NoSize:
        return _NoSize()

    @make.simplified
    def _make() -> _NoSize:
        return _NoSize()

    with testing.capture(state_dir=shadowing) as telemetry:
        assert isinstance(make(), _NoSize)
        telemetry.wait_for_shadows()
        assert len(telemetry.spans("migrate m")) == 1  # was lost: never ended nor counted
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 1
        assert _comparisons(telemetry) == {"match": 1}


def test_a_failed_hand_off_still_closes_and_counts_the_call_once(
    shadowing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aurum_otel.shadow import run as run_module

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("hand-off failed")

    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _fetch() -> int:
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        monkeypatch.setattr(run_module.ShadowRun, "__init__", broken)
        assert fetch() == 1
        telemetry.wait_for_shadows()
        assert len(telemetry.spans("migrate m")) == 1
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 1

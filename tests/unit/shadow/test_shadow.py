from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.registry import get_registry
from aurum_otel.shadow import Offer, ShadowExecutor

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


def test_a_call_closed_by_a_shadow_worker_keeps_the_callers_timing(shadowing: Path) -> None:
    @migrated("m")
    def fetch() -> int:
        time.sleep(0.05)
        return 1

    @fetch.simplified
    def _slow() -> int:
        time.sleep(0.3)
        return 1

    with testing.capture(state_dir=shadowing) as telemetry:
        before = time.time_ns()
        assert fetch() == 1
        after = time.time_ns()
        telemetry.wait_for_shadows()
        (call,) = telemetry.spans("migrate m")
        (shadow,) = telemetry.spans("shadow m")
        assert call.start_time is not None and call.end_time is not None
        assert before <= call.start_time < call.end_time <= after
        assert 0.05 <= (call.end_time - call.start_time) / 1e9 < 0.25  # not the shadow's 0.3 s
        assert shadow.parent is not None and shadow.parent.span_id == call.context.span_id
        assert call.attributes is not None and call.attributes["aurum.migration.outcome"] == "success"
        (event,) = [e for e in call.events if e.name == "feature_flag.evaluation"]
        assert event.timestamp == call.start_time  # added at close, stamped with the start
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 1
        assert telemetry.counts("aurum.migration.calls", role="shadow") == 1


def _held_migration() -> tuple[Callable[[], int], threading.Event]:
    """A migration whose shadow holds its worker until the returned gate is set."""
    gate = threading.Event()

    @migrated("m")
    def fetch() -> int:
        return 1

    @fetch.simplified
    def _waits() -> int:
        gate.wait(5)
        return 1

    return fetch, gate


def test_with_every_worker_busy_the_caller_closes_its_own_span(shadowing: Path) -> None:
    fetch, gate = _held_migration()
    with testing.capture(state_dir=shadowing) as telemetry:
        get_registry()._shadows = ShadowExecutor(workers=1, queue_size=4)
        assert fetch() == 1  # its shadow holds the only worker
        assert fetch() == 1  # its shadow waits in the queue: the caller closes the span now
        deadline = time.monotonic() + 2
        while len(telemetry.spans("migrate m")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(telemetry.spans("migrate m")) == 2  # both, while the worker is still held
        gate.set()
        telemetry.wait_for_shadows()
        assert len(telemetry.spans("migrate m")) == 2
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 2
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 2


def test_a_call_handed_to_a_job_that_never_started_is_closed_at_shutdown(
    shadowing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch, gate = _held_migration()
    with testing.capture(state_dir=shadowing) as telemetry:
        executor = get_registry()._shadows = ShadowExecutor(workers=1, queue_size=4)
        assert fetch() == 1  # its shadow holds the only worker
        offer = ShadowExecutor.offer
        # As if the worker was free when the job was offered and got taken a moment later.
        monkeypatch.setattr(ShadowExecutor, "offer",
                            lambda self, job: offer(self, job) and Offer.STARTING)
        assert fetch() == 1  # handed to a job queued behind the held worker
        time.sleep(0.1)
        assert len(telemetry.spans("migrate m")) == 1
        executor.shutdown()  # what reset() and interpreter exit do
        assert len(telemetry.spans("migrate m")) == 2
        gate.set()
        assert executor.join(5)
        assert len(telemetry.spans("migrate m")) == 2  # closed once, not again by the job
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 2


def test_a_process_that_exits_right_after_a_hybrid_call_exports_its_span(
    shadowing: Path, tmp_path: Path
) -> None:
    script = textwrap.dedent(f"""
        import os
        import sys

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

        import aurum_otel
        from aurum_otel import FileStore, migrated

        class Printing(SpanExporter):
            def export(self, spans):
                for span in spans:
                    os.write(1, f"exported {{span.name}}\\n".encode())  # one write per span
                return 0

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Printing()))
        aurum_otel.configure(store=FileStore.in_dir({str(shadowing)!r}), tracer_provider=provider)

        @migrated("m")
        def fetch():
            return 1

        @fetch.simplified
        def _fetch():
            return 1

        sys.setswitchinterval(100)  # the worker gets no turn: the call is closed at exit
        fetch()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported migrate m" in done.stdout.splitlines()


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


def test_a_caller_mutating_a_flat_dict_result_does_not_fake_a_mismatch(shadowing: Path) -> None:
    gate = threading.Event()

    @migrated("m")
    def fetch() -> dict[str, int]:
        return {"n": 1}

    @fetch.simplified
    def _fetch() -> dict[str, int]:
        gate.wait(2)
        return {"n": 1}

    with testing.capture(state_dir=shadowing) as telemetry:
        result = fetch()
        result["n"] = 2  # every value immutable, the dict itself is not
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
        assert telemetry.counts("aurum.migration.comparisons", comparison="skipped") == 1
        (shadow,) = telemetry.spans("shadow m")
        assert (shadow.attributes or {})["aurum.migration.comparison.reason"] == (
            "uncopyable_arguments")


def test_values_pickle_refuses_are_deep_copied_and_still_isolated(shadowing: Path) -> None:
    class Local:  # a class defined in a function: pickle refuses it, deepcopy does not
        def __init__(self, items: list[int]) -> None:
            self.items = items

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Local) and self.items == other.items

    gate = threading.Event()

    @migrated("m")
    def fetch(box: Local) -> Local:
        return Local(list(box.items))

    @fetch.simplified
    def _fetch(box: Local) -> Local:
        gate.wait(2)
        box.items.append(99)  # mutates only its own copy
        return Local(box.items[:-1])

    argument = Local([1, 2])
    with testing.capture(state_dir=shadowing) as telemetry:
        result = fetch(argument)
        result.items.append(3)  # the caller mutates its result before the shadow compares
        gate.set()
        telemetry.wait_for_shadows()
        assert argument.items == [1, 2]
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


class _BreaksOnLoad:
    """Pickles fine, but rebuilding it raises (a snapshot that cannot be thawed)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_refuse, (self.value,))


def _refuse(value: int) -> Any:
    raise RuntimeError(f"cannot rebuild {value}")


def test_a_snapshot_that_cannot_be_thawed_is_a_comparison_error(shadowing: Path) -> None:
    ran: list[str] = []

    @migrated("m")
    def use(value: Any) -> _BreaksOnLoad:
        return _BreaksOnLoad(1)

    @use.simplified
    def _use(value: Any) -> _BreaksOnLoad:
        ran.append("simplified")
        return _BreaksOnLoad(1)

    with testing.capture(state_dir=shadowing) as telemetry:
        assert use([1]).value == 1  # the result cannot be thawed: error, caller unaffected
        assert use(_BreaksOnLoad(2)).value == 1  # nor the arguments: the shadow never runs
        telemetry.wait_for_shadows()
        assert ran == ["simplified"]
        assert telemetry.counts("aurum.migration.comparisons", comparison="error") == 2
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 0


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
        # cut off at its deadline, the run is still counted, as a late sync shadow is: its
        # latency must reach the histograms
        assert telemetry.counts("aurum.migration.calls", role="shadow") == 1
        (shadow,) = telemetry.spans("shadow m")
        assert shadow.attributes is not None
        assert shadow.attributes["aurum.migration.comparison"] == "timeout"


def test_the_default_comparator_is_not_fooled_by_equal_values_of_other_types(
    shadowing: Path,
) -> None:
    from decimal import Decimal

    @migrated("m")
    def fetch(kind: str) -> Any:
        return {"enabled": 0} if kind == "flag" else [10]

    @fetch.simplified
    def _fetch(kind: str) -> Any:
        return {"enabled": False} if kind == "flag" else [Decimal(10)]  # == says equal

    with testing.capture(state_dir=shadowing) as telemetry:
        fetch("flag")
        fetch("amount")
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 2
        differences = [s.attributes["aurum.migration.differences"]
                       for s in telemetry.spans("shadow m") if s.attributes]
        assert sorted(differences) == ["[0]: int != Decimal", "enabled: int != bool"]


def test_an_async_shadow_raising_its_own_timeout_error_is_compared_not_timed_out(
    shadowing: Path,
) -> None:
    import asyncio

    @migrated("m", shadow_timeout=5)
    async def fetch() -> int:
        return 1

    @fetch.simplified
    async def _fetch() -> int:
        raise TimeoutError("the shadow's own socket timeout")

    async def scenario() -> None:
        assert await fetch() == 1
        await asyncio.sleep(0.1)

    with testing.capture(state_dir=shadowing) as telemetry:
        asyncio.run(scenario())
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
        assert telemetry.counts("aurum.migration.comparisons", comparison="timeout") == 0
        assert telemetry.counts("aurum.migration.calls", role="shadow", outcome="error") == 1


def test_a_frozenset_holding_mutable_values_is_snapshotted(shadowing: Path) -> None:
    class Box:
        def __init__(self) -> None:
            self.items: list[int] = []

    @migrated("m")
    def fill(boxes: frozenset[Box]) -> list[int]:
        for box in boxes:
            box.items.append(1)  # the authoritative mutates what it was given
        return [len(box.items) for box in boxes]

    @fill.simplified
    def _fill(boxes: frozenset[Box]) -> list[int]:
        for box in boxes:
            box.items.append(1)
        return [len(box.items) for box in boxes]

    with testing.capture(state_dir=shadowing) as telemetry:
        assert fill(frozenset({Box()})) == [1]
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1


def test_a_cancelled_async_call_is_neither_counted_nor_shadowed(shadowing: Path) -> None:
    import asyncio

    ran: list[str] = []

    @migrated("m")
    async def fetch() -> int:
        await asyncio.sleep(1)
        return 1

    @fetch.simplified
    async def _fetch() -> int:
        ran.append("simplified")
        return 1

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fetch(), 0.05)  # the caller gives up
        await asyncio.sleep(0.1)

    with testing.capture(state_dir=shadowing) as telemetry:
        asyncio.run(scenario())
        telemetry.wait_for_shadows()
        assert ran == []
        assert telemetry.counts("aurum.migration.calls") == 0
        assert telemetry.counts("aurum.migration.comparisons") == 0
        (span,) = telemetry.spans("migrate m")
        assert span.attributes is not None
        assert span.attributes["error.type"] == "asyncio.exceptions.CancelledError"


def test_a_call_handed_over_across_a_reconfigure_is_closed_and_counted_once(
    shadowing: Path,
) -> None:
    fetch, gate = _held_migration()
    gate.set()
    let_go = threading.Event()

    class NotYetScheduled:  # the worker does not get to run until the test says so
        def __init__(self) -> None:
            self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def put(self, job: Any) -> None:
            self.jobs.put(job)

        def qsize(self) -> int:
            return self.jobs.qsize()

        def get(self) -> Any:
            let_go.wait(5)
            return self.jobs.get()

    first = testing.capture(state_dir=shadowing).__enter__()
    assert first.registry is not None
    executor = first.registry.shadows
    executor._queue = NotYetScheduled()  # type: ignore[assignment]
    assert fetch() == 1  # handed to a job that has not started
    close = first.registry.close

    def another_thread_calls_in_between() -> None:  # after configure()'s swap, before the close
        assert fetch() == 1  # rebinds the router to the new registry
        close()

    first.registry.close = another_thread_calls_in_between  # type: ignore[method-assign]
    with testing.capture(state_dir=shadowing) as second:
        let_go.set()
        assert executor.join(5)
        second.wait_for_shadows()
        assert len(first.spans("migrate m")) == 1  # closed, and recorded where it started
        assert first.counts("aurum.migration.calls", role="authoritative") == 1
        assert len(second.spans("migrate m")) == 1
        assert second.counts("aurum.migration.calls", role="authoritative") == 1


class _Job:
    """The smallest job the executor takes: it records that it ran."""

    def __init__(self, ran: list[int], value: int, size: int = 0) -> None:
        self.ran, self.value, self.size = ran, value, size
        self.deadline = time.perf_counter() + 5
        self.cancelled: list[str] = []

    def run(self) -> None:
        self.ran.append(self.value)

    def expire(self) -> None:
        pass

    def cancel(self, reason: str) -> None:
        self.cancelled.append(reason)


def test_nothing_is_queued_after_shutdown() -> None:
    executor = ShadowExecutor(workers=1, queue_size=4)
    ran: list[int] = []
    assert executor.offer(_Job(ran, 1)) is Offer.STARTING
    assert executor.join(5) and ran == [1]
    executor.shutdown()
    assert executor.offer(_Job(ran, 2)) is Offer.CLOSED
    assert executor.join(0.1)  # nothing in flight: no job waits behind the stop signal
    time.sleep(0.05)
    assert ran == [1]


def test_a_discarded_executor_leaves_no_process_hook_behind() -> None:
    import atexit

    ShadowExecutor(workers=1, queue_size=4)  # the process hooks are registered once, by now
    before = atexit._ncallbacks()  # type: ignore[attr-defined]
    for _ in range(5):
        ShadowExecutor(workers=1, queue_size=4).shutdown()
    assert atexit._ncallbacks() == before  # type: ignore[attr-defined]

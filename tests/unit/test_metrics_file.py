from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurum_otel import FileStore, Phase, Rollout, migrated
from aurum_otel.guide import metrics_file
from aurum_otel.guide.file_source import FileHealthSource, read_metrics_file
from aurum_otel.guide.metrics_file import merge
from aurum_otel.health import HealthPolicy, Status
from aurum_otel.health.file import (
    BUCKET_SECONDS,
    MAX_BUCKETS,
    RETENTION,
    add_to_windows,
    select_buckets,
)
from aurum_otel.registry import configure, get_registry


def MetricsFileWriter(path: Path, **options: Any) -> metrics_file.MetricsFileWriter:
    """A writer of the registry's counts (its aggregator and phases), not the one it owns."""
    registry = get_registry()
    return metrics_file.MetricsFileWriter(path, aggregator=registry.instruments().aggregator,
                                          phases=registry.phases, **options)


def _worker(state_dir: str, worker: int, calls: int) -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    path = Path(state_dir) / "migration_metrics.json"
    provider = MeterProvider()
    configure(store=FileStore.in_dir(state_dir), meter_provider=provider)
    writer = MetricsFileWriter(path, interval=0.05).start()

    @migrated("settings")
    def load(i: int) -> int:
        if i % 10 == 0:
            raise ValueError("legacy error")
        return i

    @load.simplified
    def _load(i: int) -> int:
        return i

    for i in range(calls):
        try:
            load(i)
        except ValueError:
            pass
    writer.stop()


def test_counts_from_several_processes_add_up(tmp_path: Path) -> None:
    FileStore.in_dir(tmp_path).transition("settings", Phase.HYBRID,
                                          Rollout(percent=50, compare=0), actor="t", reason="t")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(str(tmp_path), w, 400)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    section = read_metrics_file(tmp_path / "migration_metrics.json")["settings_migration"]
    assert section["legacy_calls"] + section["simplified_calls"] == 1600
    assert 0 < section["legacy_calls"] < 1600  # really split
    impl = section["implementations"]
    assert impl["legacy"]["errors"] == section["errors"] > 0
    assert section["migration_phase"] == "hybrid"
    assert 0 < len(section["performance_ms"]) <= 100
    assert sum(impl["legacy"]["histogram"]["counts"]) == impl["legacy"]["calls"]


def test_the_guides_schema_with_both_sections(tmp_path: Path) -> None:
    merge(tmp_path / "m.json", {}, {"settings": "legacy", "database": "hybrid"})
    document = json.loads((tmp_path / "m.json").read_text())
    for section in ("settings_migration", "database_migration"):
        assert {"legacy_calls", "simplified_calls", "errors", "performance_ms",
                "migration_phase"} <= document[section].keys()
    assert document["database_migration"]["migration_phase"] == "hybrid"


def test_a_corrupt_metrics_file_is_kept_aside_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "migration_metrics.json"
    path.write_text('{"settings_migration": {"legacy_calls": 15')
    with pytest.raises(Exception, match="not valid JSON"):
        read_metrics_file(path)
    with caplog.at_level(logging.ERROR):
        merge(path, {"settings": {"calls": {("legacy", "authoritative", "success"): 3},
                                  "hist": {}, "comparisons": {}}}, {})
    kept = list(tmp_path.glob("migration_metrics.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text().startswith('{"settings_migration"')
    assert "was corrupt" in caplog.text and str(kept[0]) in caplog.text
    assert read_metrics_file(path)["settings_migration"]["legacy_calls"] == 3


def test_performance_samples_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    for _ in range(150):
        merge(path, {"x": {"calls": {}, "comparisons": {}, "hist": {"legacy": {
            "bounds": [1.0], "counts": [1, 0], "sum": 0.002, "count": 1,
            "authoritative_sum": 0.002, "authoritative_count": 1}}}}, {})
    assert len(read_metrics_file(path)["x_migration"]["performance_ms"]) == 100



# --- windows (issue 13.1) ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _own_meter_provider() -> None:
    """A fresh aggregator per test (the global providers' one lives as long as the process)."""
    from opentelemetry.sdk.metrics import MeterProvider

    configure(meter_provider=MeterProvider())


def _routed(name: str, fail_every: int = 0) -> Any:
    @migrated(name)
    def call(i: int) -> int:
        return i

    @call.simplified
    def _call(i: int) -> int:
        if fail_every and i % fail_every == 0:
            raise ValueError("simplified bug")
        return i

    return call


def _run(call: Any, n: int) -> None:
    for i in range(n):
        try:
            call(i)
        except ValueError:
            pass


def _move(name: str, phase: Phase, rollout: Rollout | None = None) -> None:
    get_registry().store.transition(name, phase, rollout or Rollout(), actor="t", reason="t")
    get_registry().migration(name).invalidate()


def test_a_fixed_release_is_judged_on_its_own_step_not_on_the_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    writer = MetricsFileWriter(path)
    _move("orders", Phase.SIMPLIFIED)
    _run(_routed("orders", fail_every=7), 700)  # the bad release: 14.29 % errors
    assert writer.flush()
    _move("orders", Phase.LEGACY)  # rollback, fix, advance again
    _move("orders", Phase.SIMPLIFIED)
    _run(_routed("orders"), 1000)  # 1,000 clean calls of the fixed code
    assert writer.flush()
    stats = FileHealthSource(path).stats("orders", 300)
    assert (stats.simplified.calls, stats.simplified.errors) == (1000, 0)
    assert "step simplified" in stats.source and "last 300 s" in stats.source
    verdict = HealthPolicy().evaluate("orders", FileHealthSource(path))
    assert verdict.status is not Status.UNHEALTHY, verdict.reasons
    # the guide's cumulative fields are unchanged: everything since the file began
    section = read_metrics_file(path)["orders_migration"]
    assert section["simplified_calls"] == 1700 and section["errors"] == 100


def test_figures_older_than_the_window_leave_it(tmp_path: Path) -> None:
    path, now = tmp_path / "m.json", [1_000_000.0]
    writer = MetricsFileWriter(path, clock=lambda: now[0])
    source = FileHealthSource(path, clock=lambda: now[0], step_of=lambda name: None)
    _move("orders", Phase.SIMPLIFIED)
    _run(_routed("orders", fail_every=2), 100)
    writer.flush()
    assert source.stats("orders", 300).simplified.errors == 50
    now[0] += 301
    _run(_routed("orders"), 40)
    writer.flush()
    stats = source.stats("orders", 300)
    assert (stats.simplified.calls, stats.simplified.errors) == (40, 0)
    assert source.stats("orders", 600).simplified.calls == 140
    assert source.stats("orders", 0).simplified.calls == 140  # window 0: since the file began


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 50), st.integers(0, 50)),
                max_size=25),
       st.integers(1, 3600))
def test_a_window_is_the_sum_of_the_increments_written_within_it(
    writes: list[tuple[int, int, int]], window: int
) -> None:
    """Any sequence of bucketed writes: the window's figure is the sum of those inside it."""
    writes = sorted(writes)
    section: dict[str, Any] = {}
    for at, calls, errors in writes:
        at_bucket = at * BUCKET_SECONDS
        add_to_windows(section, at_bucket, "simplified",
                       {"implementations": {"simplified": {"calls": calls + errors,
                                                           "errors": errors}}}, [0.1])
    now = (writes[-1][0] if writes else 0) * BUCKET_SECONDS
    chosen = select_buckets(section.get("windows", []), now=now, window=window)
    expected = sum(c + e for at, c, e in writes
                   if now - window <= at * BUCKET_SECONDS and now - at * BUCKET_SECONDS < RETENTION)
    assert sum(b["implementations"]["simplified"]["calls"] for b in chosen) == expected
    assert len(section.get("windows", [])) <= MAX_BUCKETS


def test_the_file_stays_bounded(tmp_path: Path) -> None:
    section: dict[str, Any] = {}
    for i in range(5000):
        add_to_windows(section, i * BUCKET_SECONDS, f"hybrid {i % 3}%/100%",
                       {"implementations": {"legacy": {"calls": 1, "errors": 0}}}, [0.1])
    assert len(section["windows"]) <= MAX_BUCKETS
    assert section["windows"][0]["t"] > 4999 * BUCKET_SECONDS - RETENTION


# --- the writer survives (issue 13.3) ------------------------------------------------------------

def test_the_writer_survives_a_full_disk_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.json"
    writer = MetricsFileWriter(path, interval=0.01)
    _move("orders", Phase.SIMPLIFIED)
    call = _routed("orders")
    _run(call, 10)
    full = OSError(errno.ENOSPC, "No space left on device")

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise full

    monkeypatch.setattr(metrics_file, "write_json_atomic", no_space)
    writer.start()
    with caplog.at_level(logging.DEBUG, logger="aurum_otel.metrics_file"):
        deadline = time.monotonic() + 2
        while writer.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.failures >= 3 and writer.running
        assert "No space left" in (writer.last_error or "")
        assert writer.state()["last_error"] == writer.last_error
        assert writer.next_delay() > writer.interval  # backing off
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "retried with backoff" in errors[0].getMessage()
        monkeypatch.undo()
        _run(call, 5)
        assert writer.flush()  # nothing lost: the 10 calls of the failed flushes are written too
    writer.stop()
    assert writer.last_error is None and writer.failures == 0
    assert read_metrics_file(path)["orders_migration"]["simplified_calls"] == 15


def test_a_metrics_file_in_the_guides_own_schema_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "migration_metrics.json"
    guide = {"settings_migration": {"legacy_calls": 15, "simplified_calls": 3, "errors": 1,
                                    "performance_ms": [1.5], "migration_phase": "legacy"},
             "database_migration": {"legacy_calls": 0, "simplified_calls": 0, "errors": 0,
                                    "performance_ms": [], "migration_phase": "legacy"}}
    path.write_text(json.dumps(guide))
    writer = MetricsFileWriter(path)
    _move("settings", Phase.SIMPLIFIED, None)
    _run(_routed("settings", fail_every=5), 10)
    assert writer.flush(), writer.last_error
    section = read_metrics_file(path)["settings_migration"]
    assert (section["legacy_calls"], section["simplified_calls"], section["errors"]) == (15, 13, 3)
    assert section["performance_ms"][0] == 1.5 and section["fallbacks"] == 0

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated
from aurum_otel.metrics_file import MetricsFileWriter, merge, read_metrics_file
from aurum_otel.registry import configure


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


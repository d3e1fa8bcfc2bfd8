"""The file store at its history limit, and records that cannot be read."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, configure
from aurum_otel.stores.model import HISTORY_LIMIT


def _old_layout(path: Path, entries: int) -> None:
    """A state file as aurum-otel wrote it before the history moved out (history inline)."""
    history = [{"at": 1.7e9 + i, "from": "legacy", "to": "hybrid",
                "rollout": {"percent": 10.0, "compare": 25.0, "fallback": False},
                "actor": "a", "reason": f"r{i}"} for i in range(entries)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": 1, "migrations": {"settings": {
        "phase": "hybrid", "rollout": {"percent": 10.0, "compare": 25.0, "fallback": False},
        "updated_at": 1.7e9, "history": history}}}))


def test_reading_the_phase_stays_cheap_at_the_history_limit(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    _old_layout(store.path, HISTORY_LIMIT)
    store.transition("settings", Phase.HYBRID, Rollout(percent=50), actor="a", reason="convert")
    reader = FileStore.in_dir(tmp_path)  # another process: nothing cached
    timings = []
    for step in range(3):
        store.transition("settings", Phase.HYBRID, Rollout(percent=60 + step), actor="a",
                         reason="next")
        started = time.perf_counter()
        record = reader.snapshot().get("settings")
        timings.append(time.perf_counter() - started)
        assert record is not None and record.rollout.percent == 60 + step
    assert max(timings) < 0.02, timings  # was 0.85 s: the whole history parsed per change
    assert len(record.history) == HISTORY_LIMIT  # still all there, when someone looks
    assert record.history[-1].reason == "next" and record.history[0].reason == "r4"


def test_a_state_file_of_the_earlier_layout_is_read_and_converted(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    _old_layout(store.path, 3)
    record = store.snapshot().get("settings")
    assert record is not None and record.phase is Phase.HYBRID
    assert [t.reason for t in record.history] == ["r0", "r1", "r2"]
    store.transition("settings", Phase.SIMPLIFIED, actor="b", reason="done")
    document = json.loads(store.path.read_text())
    assert "history" not in document["migrations"]["settings"]
    assert document["schema"] == 1  # readers of the earlier layout still read the phase
    record = FileStore.in_dir(tmp_path).snapshot().get("settings")
    assert record is not None
    assert [t.reason for t in record.history] == ["r0", "r1", "r2", "done"]


def _bad_neighbour(store: FileStore) -> None:
    store.transition("settings", Phase.HYBRID, Rollout(percent=10), actor="a", reason="r")
    document = json.loads(store.path.read_text())
    document["migrations"]["database"] = {"phase": "sideways", "rollout": {}}
    store.path.write_text(json.dumps(document))


def test_a_bad_record_affects_only_its_own_migration(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    _bad_neighbour(store)
    registry = configure(store=store, refresh_interval=0)
    settings = registry.migration("settings").resolved().state
    database = registry.migration("database").resolved().state
    assert (settings.phase, settings.source, settings.problem) == (Phase.HYBRID, "store", None)
    assert (database.phase, database.source, database.problem) == (Phase.LEGACY, "invalid",
                                                                   "state")
    snapshot = store.snapshot()
    assert snapshot.problem is None and "sideways" in snapshot.corrupt["database"]


def test_advance_beside_a_bad_record_lands_and_the_bad_record_is_kept_aside(tmp_path: Path
                                                                           ) -> None:
    store = FileStore.in_dir(tmp_path)
    _bad_neighbour(store)
    store.transition("settings", Phase.SIMPLIFIED, actor="a", reason="advance")
    reader = FileStore.in_dir(tmp_path)
    snapshot = reader.snapshot()
    assert snapshot.problem is None
    assert snapshot.records["settings"].phase is Phase.SIMPLIFIED
    kept = reader.kept_aside()
    assert kept["database"]["record"] == {"phase": "sideways", "rollout": {}}
    assert "sideways" in kept["database"]["error"]
    assert "database" in snapshot.corrupt  # still reported until its own next transition
    store.transition("database", Phase.HYBRID, actor="a", reason="repaired")
    snapshot = reader.snapshot()
    assert "database" not in snapshot.corrupt and snapshot.records["database"].phase is Phase.HYBRID
    assert "database" in reader.kept_aside()  # nothing is lost


def test_one_bad_history_entry_loses_nothing_else(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("settings", Phase.HYBRID, actor="a", reason="one")
    document = json.loads(store.history_path.read_text())
    document["history"]["settings"].append({"from": "nowhere"})
    store.history_path.write_text(json.dumps(document))
    assert [t.reason for t in FileStore.in_dir(tmp_path).snapshot().records["settings"].history
            ] == ["one"]
    store.transition("settings", Phase.SIMPLIFIED, actor="a", reason="two")
    record = FileStore.in_dir(tmp_path).snapshot().records["settings"]
    assert record.phase is Phase.SIMPLIFIED
    assert [t.reason for t in record.history] == ["one", "two"]
    kept = json.loads(store.history_path.read_text())["corrupt"]
    assert [k["entry"] for k in kept] == [{"from": "nowhere"}]


@pytest.mark.parametrize("reason", ["ticket [/ops] rollout", "ünïcödé \x00 nul", "x" * 10_000])
def test_what_is_written_reads_back(tmp_path: Path, reason: str) -> None:
    store = FileStore.in_dir(tmp_path)
    change = store.transition("settings", Phase.HYBRID, actor=reason, reason=reason)
    record = FileStore.in_dir(tmp_path).snapshot().records["settings"]
    assert record.history[-1] == change

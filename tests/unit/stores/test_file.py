from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aurum_otel import (
    CorruptStateError,
    FileStore,
    Phase,
    Rollout,
    TransitionConflictError,
    configure,
)


def test_transition_is_written_atomically_with_history(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("settings", Phase.HYBRID, Rollout(percent=10), actor="alice", reason="bake")
    store.transition("settings", Phase.LEGACY, actor="controller", reason="error rate 7%")
    document = json.loads(store.path.read_text())
    record = document["migrations"]["settings"]
    assert record["phase"] == "legacy"
    assert "history" not in record  # kept apart, so that reading the phase stays cheap
    history = json.loads(store.history_path.read_text())["history"]["settings"]
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in history] == [
        ("legacy", "hybrid", "alice", "bake"),
        ("hybrid", "legacy", "controller", "error rate 7%"),
    ]
    assert all(h["at"] > 1.7e9 for h in history)
    assert record["transition_id"] == history[-1]["id"]
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.history_path).st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_compare_and_set_conflict(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("db", Phase.HYBRID, actor="a", reason="r", expected=Phase.LEGACY)
    with pytest.raises(TransitionConflictError, match="'hybrid', not 'legacy'"):
        store.transition("db", Phase.SIMPLIFIED, actor="b", reason="r", expected=Phase.LEGACY)


def test_snapshot_rereads_only_when_the_file_changed(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    assert store.snapshot().get("x") is None
    FileStore.in_dir(tmp_path).transition("x", Phase.HYBRID, actor="a", reason="r")
    first = store.snapshot()
    assert first.get("x") is not None and first.get("x").phase is Phase.HYBRID  # type: ignore[union-attr]
    assert store.snapshot() is first  # unchanged file: the cached snapshot, no re-read


def _hammer(path: str, worker: int, count: int) -> None:
    store = FileStore(path)
    for i in range(count):
        phase = (Phase.HYBRID, Phase.SIMPLIFIED, Phase.LEGACY)[(worker + i) % 3]
        store.transition("shared", phase, actor=f"w{worker}", reason=f"op {i}")


def test_concurrent_processes_lose_no_transition(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(path, w, 50)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    history = FileStore(path).snapshot().records["shared"].history
    assert len(history) == 200
    # Each transition starts where the previous one ended: no write was lost or interleaved.
    assert all(a.to_phase is b.from_phase for a, b in itertools.pairwise(history))
    assert {t.actor for t in history} == {"w0", "w1", "w2", "w3"}


WATCHER = """
import sys, time
from aurum_otel import configure, FileStore
registry = configure(store=FileStore.in_dir(sys.argv[1]))
runtime = registry.migration("settings")
print("ready", runtime.resolved().state.phase, flush=True)
sys.stdin.readline()
start = time.monotonic()
while runtime.resolved().state.phase.value != "simplified":
    if time.monotonic() - start > 5:
        print("timeout", flush=True); sys.exit(1)
    time.sleep(0.01)
print(f"seen {time.monotonic() - start:.3f}", flush=True)
"""


def test_a_running_process_sees_a_transition_within_one_second(tmp_path: Path) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert watcher.stdout is not None and watcher.stdin is not None
    assert watcher.stdout.readline().strip() == "ready legacy"
    FileStore.in_dir(tmp_path).transition("settings", Phase.SIMPLIFIED, actor="op", reason="go")
    watcher.stdin.write("\n")
    watcher.stdin.flush()
    line = watcher.stdout.readline().split()
    assert watcher.wait(10) == 0
    assert line[0] == "seen" and float(line[1]) < 1.0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2]", b'{"schema": 1, "migrations": ["x"]}', b"\xff\xfe\x00"],
    ids=["garbage", "empty", "array", "migrations-not-an-object", "binary"],
)
def test_corrupt_file_runs_legacy_and_is_kept_aside(tmp_path: Path, content: bytes) -> None:
    store = FileStore.in_dir(tmp_path)
    store.path.write_bytes(content)
    snapshot = store.snapshot()
    assert isinstance(snapshot.problem, CorruptStateError)
    registry = configure(store=store, refresh_interval=0)
    state = registry.migration("x").resolved().state
    assert (state.phase, state.source) == (Phase.LEGACY, "invalid")
    assert store.path.read_bytes() == content  # reading never touches the bad file

    store.transition("x", Phase.HYBRID, actor="op", reason="after repair")
    kept = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert store.snapshot().records["x"].phase is Phase.HYBRID


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/aurum-otel-cannot-write-here")
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    store = FileStore.in_dir(target)
    with pytest.raises(Exception, match="AURUM_STATE_DIR"):
        store.transition("x", Phase.HYBRID, actor="op", reason="r")
    registry = configure(store=store, refresh_interval=0)
    assert registry.migration("x").resolved().state.phase is Phase.LEGACY


def test_history_is_bounded(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s.json", history_limit=5)
    for i in range(8):
        store.transition("x", (Phase.HYBRID, Phase.LEGACY)[i % 2], actor="a", reason=str(i))
    history = store.snapshot().records["x"].history
    assert [t.reason for t in history] == ["3", "4", "5", "6", "7"]


def test_refresh_interval_caches_between_reads(tmp_path: Path) -> None:
    now = [0.0]
    registry = configure(store=FileStore.in_dir(tmp_path), clock=lambda: now[0],
                         refresh_interval=0.5)
    runtime = registry.migration("x")
    assert runtime.resolved().state.phase is Phase.LEGACY
    FileStore.in_dir(tmp_path).transition("x", Phase.SIMPLIFIED, actor="a", reason="r")
    now[0] = 0.4
    assert runtime.resolved().state.phase is Phase.LEGACY
    now[0] = 0.5
    assert runtime.resolved().state.phase is Phase.SIMPLIFIED

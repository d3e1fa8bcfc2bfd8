"""Tests that kill the surviving mutants of the file store's promises (scripts/mutation.sh stores).

Promises held here: each write replaces the state file by an atomic rename (a reader that has the
file open keeps the complete previous document; a writer that fails mid-way leaves the previous
file intact and no temporary file), files are 0600, a corrupt file is kept aside and never
overwritten, and writers hold the inter-process lock.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel._files import locked, move_aside, write_json_atomic


def test_each_write_is_a_new_file_renamed_into_place(tmp_path: Path) -> None:
    """A reader that opened the state file before a transition reads the whole previous document
    after it: the writer renamed a new file over the path, it never rewrote the file in place."""
    store = FileStore.in_dir(tmp_path)
    store.transition("m", Phase.HYBRID, Rollout(percent=5), actor="a", reason="first")
    before = os.stat(store.path).st_ino
    with open(store.path, encoding="utf-8") as reader:
        store.transition("m", Phase.SIMPLIFIED, actor="a", reason="second")
        old = json.loads(reader.read())
    assert old["migrations"]["m"]["phase"] == "hybrid"
    assert os.stat(store.path).st_ino != before
    assert json.loads(store.path.read_text())["migrations"]["m"]["phase"] == "simplified"


def test_a_write_that_fails_midway_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"version": 1})
    previous = target.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(target, {"version": 2, "padding": "x" * 100_000})
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary file left


def test_a_written_file_is_0600_even_over_a_0644_one(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("{}")
    os.chmod(target, 0o644)
    write_json_atomic(target, {"a": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(target.read_text()) == {"a": 1}


def test_a_corrupt_file_kept_aside_twice_in_one_second_keeps_both(tmp_path: Path) -> None:
    """Two bad files moved aside within the same second get two names: neither is overwritten."""
    target = tmp_path / "state.json"
    target.write_bytes(b"{first bad")
    first = move_aside(target)
    target.write_bytes(b"{second bad")
    second = move_aside(target)
    target.write_bytes(b"{third bad")
    third = move_aside(target)
    assert len({first, second, third}) == 3
    assert first.read_bytes() == b"{first bad"
    assert second.read_bytes() == b"{second bad"
    assert third.read_bytes() == b"{third bad"
    assert not target.exists()
    assert all(p.name.startswith("state.json.corrupt-") for p in (first, second, third))


def test_the_lock_excludes_another_holder_until_released(tmp_path: Path) -> None:
    """A second writer (another open file description, as in another process) waits for the
    first to leave :func:`locked`, and gets the lock once it has."""
    target = tmp_path / "state.json"
    entered = threading.Event()
    order: list[str] = []

    def second_writer() -> None:
        with locked(target):
            order.append("second")
        entered.set()

    with locked(target):
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not entered.wait(0.2)  # blocked while the first holds the lock
        order.append("first")
    assert entered.wait(5)
    thread.join(5)
    assert order == ["first", "second"]
    lock_file = tmp_path / "state.json.lock"
    assert stat.S_IMODE(os.stat(lock_file).st_mode) == 0o600

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
import sys
import threading
from pathlib import Path

import pytest

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout
from aurum_otel.store import STATE_FILE, store_from_url

try:
    from aurum_otel.stores.files import locked, move_aside, write_json_atomic
except ImportError:  # before _files.py moved into stores/
    from aurum_otel._files import locked, move_aside, write_json_atomic  # type: ignore[no-redef]


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


def test_a_file_url_naming_a_directory_puts_the_state_file_inside_it(tmp_path: Path) -> None:
    store = store_from_url(f"file://{tmp_path}/states", tmp_path)
    assert isinstance(store, FileStore)
    assert store.path == tmp_path / "states" / STATE_FILE
    named = store_from_url(f"file://{tmp_path}/mine.json", tmp_path)
    assert isinstance(named, FileStore) and named.path == tmp_path / "mine.json"


def test_a_bad_redis_url_never_shows_its_password(tmp_path: Path) -> None:
    """The error names the URL after its credentials, even a password containing '@'."""
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError) as caught:
        store_from_url("redis://admin:s3cr@t-pw@localhost:notaport/0", tmp_path)
    message = str(caught.value)
    assert "localhost" in message
    assert "s3cr" not in message and "t-pw" not in message and "admin" not in message


def test_the_history_keeps_each_transitions_rollout(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("m", Phase.HYBRID, Rollout(percent=10, compare=25, fallback=True),
                     actor="a", reason="r")
    (entry,) = FileStore.in_dir(tmp_path).history("m")
    assert entry.rollout == Rollout(percent=10, compare=25, fallback=True)


def test_history_entries_kept_aside_stay_kept_through_later_writes(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("m", Phase.HYBRID, actor="a", reason="one")
    document = json.loads(store.history_path.read_text())
    document["history"]["m"].append({"from": "nowhere"})
    store.history_path.write_text(json.dumps(document))
    store.transition("m", Phase.SIMPLIFIED, actor="a", reason="two")
    store.transition("m", Phase.LEGACY, actor="a", reason="three")
    kept = json.loads(store.history_path.read_text())["corrupt"]
    assert [k["entry"] for k in kept] == [{"from": "nowhere"}]


def test_a_redis_url_without_the_extra_never_shows_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("aurum_otel.redis_store", "aurum_otel.stores.redis"):  # as if not installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigurationError, match=r"redis extra") as caught:
        store_from_url("redis://admin:s3cr@t-pw@localhost:6379/0", tmp_path)
    assert "s3cr" not in str(caught.value) and "admin" not in str(caught.value)

"""The state directory is trusted as ssh trusts ~/.ssh; files are locked, written atomically and
never left half-written (stores/files.py under the file store)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, StateError, testing
from tests.unit.stores.routing import which as _which

CONFIG_ERROR = "aurum.migration.config_error"


def test_a_lock_file_planted_as_a_symlink_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = tmp_path / "victim"
    (state / "migration_state.json.lock").symlink_to(target)
    store = FileStore.in_dir(state)
    with pytest.raises(StateError, match="symbolic link"):
        store.transition("m", Phase.HYBRID, actor="t", reason="t")
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702], ids=["world", "group", "others"])
def test_a_state_directory_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    FileStore.in_dir(state).transition("m", Phase.SIMPLIFIED, actor="t", reason="t")
    os.chmod(state, mode)
    store = FileStore.in_dir(state)
    with pytest.raises(StateError) as caught:
        store.transition("m", Phase.HYBRID, actor="t", reason="t")
    message = str(caught.value)
    assert str(state) in message and f"chmod go-w {state}" in message
    snapshot = store.snapshot()
    assert snapshot.records == {} and snapshot.problem is not None
    assert str(state) in str(snapshot.problem)


def test_calls_on_an_untrusted_state_directory_run_legacy_with_a_config_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    state.mkdir()
    FileStore.in_dir(state).transition("trust", Phase.SIMPLIFIED, actor="t", reason="t")
    os.chmod(state, 0o777)
    which = _which("trust")
    with caplog.at_level(logging.ERROR, logger="aurum_otel"), \
            testing.capture(state_dir=state) as telemetry:
        assert [which() for _ in range(3)] == ["legacy"] * 3
    assert {s.attributes[CONFIG_ERROR] for s in telemetry.spans()} == {"state"}  # type: ignore[index]
    assert len([r for r in caplog.records if str(state) in r.getMessage()]) == 1


def test_a_state_directory_owned_by_another_user_is_refused(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(state, 12345, -1)  # root may own a state directory; another user may not
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.stat(state).st_uid + 1)
    with pytest.raises(StateError, match="chown"):
        FileStore.in_dir(state).transition("m", Phase.HYBRID, actor="t", reason="t")


_KILLED_WRITER = """
import os, sys, time
from aurum_otel import FileStore, Phase
real_fsync = os.fsync
def stall(fd):
    print("writing", flush=True)
    time.sleep(60)
os.fsync = stall
FileStore.in_dir(sys.argv[1]).transition("m", Phase.SIMPLIFIED, actor="t", reason="t")
"""


def test_a_writer_killed_mid_transition_leaves_no_temp_file_for_good(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = FileStore.in_dir(state)
    store.transition("m", Phase.HYBRID, actor="t", reason="t")
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(state)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait(5)
    leftovers = [p.name for p in state.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the killed writer should have left its temp file"
    time.sleep(0.01)
    store.transition("m", Phase.SIMPLIFIED, actor="t", reason="t")
    assert [p.name for p in state.iterdir() if p.name.endswith(".tmp")] == []
    assert store.snapshot().get("m").phase is Phase.SIMPLIFIED  # type: ignore[union-attr]

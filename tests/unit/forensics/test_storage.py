"""Storage: a rotated JSON-lines file beside the state file (0600), read back oldest first."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from aurum_otel.errors import ConfigurationError
from aurum_otel.flags import GlobalFlags
from aurum_otel.forensics.storage import FILE_NAME, FileSink, default_sink, mismatch_path


def line(name: str, number: int, when: float = 0.0) -> str:
    return json.dumps({"name": name, "n": number, "time": when, "pad": "x" * 80})


def test_the_file_rotates_and_keeps_the_newest_examples(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / FILE_NAME, max_bytes=1024, backups=2)
    for number in range(60):
        sink.append("settings", line("settings", number))
    files = sink.files()
    assert [p.name for p in files] == [f"{FILE_NAME}.2", f"{FILE_NAME}.1", FILE_NAME]
    assert all(p.stat().st_size <= 1024 for p in files)
    numbers = [r["n"] for r in sink.read("settings")]
    assert numbers == list(range(60 - len(numbers), 60))  # the newest, in order
    size = len(line("settings", 59)) + 1
    assert 2 * (1024 // size) + 1 <= len(numbers) < 60  # two full backups and the current file
    assert stat.S_IMODE(os.stat(tmp_path / FILE_NAME).st_mode) == 0o600


def test_reading_filters_by_name_and_time_and_skips_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    sink = FileSink(path)
    sink.append("settings", line("settings", 1, when=100))
    sink.append("database", line("database", 2, when=200))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"name": "settings", "n": 3, "ti')  # a write cut by a crash
        handle.write("\n[1, 2]\n")
    sink.append("settings", line("settings", 4, when=300))
    assert [r["n"] for r in sink.read("settings")] == [1, 4]
    assert sink.unreadable_lines == 2
    assert [r["n"] for r in sink.read("settings", since=200)] == [4]


def test_the_file_is_beside_the_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path / "state"))
    assert mismatch_path(GlobalFlags.from_env()) == tmp_path / "state" / FILE_NAME
    monkeypatch.setenv("AURUM_STATE_URL", f"file://{tmp_path}/elsewhere/state.json")
    assert mismatch_path(GlobalFlags.from_env()) == tmp_path / "elsewhere" / FILE_NAME
    sink = default_sink(GlobalFlags.from_env())
    assert isinstance(sink, FileSink) and sink.path == tmp_path / "elsewhere" / FILE_NAME


def test_a_redis_store_url_gives_a_stream_per_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redis")
    monkeypatch.setenv("AURUM_STATE_URL", "redis://:pw@127.0.0.1:1/0?prefix=team")
    sink = default_sink(GlobalFlags.from_env())
    assert sink.key("settings") == "team:mismatches:settings"  # type: ignore[attr-defined]
    assert "pw" not in sink.location


def test_rotation_limits_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 1024 bytes"):
        FileSink(tmp_path / FILE_NAME, max_bytes=10)

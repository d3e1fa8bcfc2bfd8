"""Where captured examples go: the phase store's backend.

* The file store (default): ``mismatches.jsonl`` beside the state file (``$AURUM_STATE_DIR``, or
  the folder of a ``file://`` URL), one JSON object a line, 0600, appended under the state
  folder's inter-process lock and rotated at ``max_bytes`` into ``mismatches.jsonl.1`` ... ``.N``.
* The Redis store (``AURUM_STATE_URL=redis://...``): a capped stream per migration,
  ``<prefix>:mismatches:<name>`` (``XADD ... MAXLEN ~ max_entries``), through a client of its own
  built lazily from the URL (:mod:`aurum_otel.forensics.redis_sink`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from aurum_otel._files import ensure_dir, locked
from aurum_otel.errors import ConfigurationError
from aurum_otel.flags import GlobalFlags

FILE_NAME = "mismatches.jsonl"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_BACKUPS = 3


class Sink(Protocol):
    """Stores examples (already redacted and capped) and reads them back."""

    location: str

    def append(self, name: str, line: str) -> None: ...

    def read(self, name: str, since: float | None = None) -> Iterator[dict[str, Any]]: ...


class FileSink:
    """A JSON-lines file, rotated at ``max_bytes`` keeping ``backups`` older files."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS) -> None:
        if max_bytes < 1024 or backups < 1:
            raise ConfigurationError("mismatch file rotation", f"{max_bytes} bytes, {backups} "
                                     "backups", "at least 1024 bytes and 1 backup")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.location = str(path)
        self._lock = threading.Lock()
        self.unreadable_lines = 0

    def append(self, name: str, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        with self._lock, locked(self.path):
            ensure_dir(self.path.parent)
            try:
                current = os.stat(self.path).st_size
            except FileNotFoundError:
                current = 0
            if current and current + len(data) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        for index in range(self.backups, 0, -1):
            older = self._numbered(index - 1)
            if older.exists():
                os.replace(older, self._numbered(index))

    def _numbered(self, index: int) -> Path:
        return self.path if index == 0 else self.path.with_name(f"{self.path.name}.{index}")

    def files(self) -> list[Path]:
        """The files, oldest first."""
        return [p for p in (self._numbered(i) for i in range(self.backups, -1, -1)) if p.exists()]

    def read(self, name: str, since: float | None = None) -> Iterator[dict[str, Any]]:
        """``name``'s examples, oldest first; a line that is not a JSON object is counted and
        skipped (a crash mid-write leaves at most one)."""
        self.unreadable_lines = 0
        for path in self.files():
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        self.unreadable_lines += 1
                        continue
                    if not isinstance(record, dict):
                        self.unreadable_lines += 1
                        continue
                    if record.get("name") != name:
                        continue
                    if since is not None and _time(record) < since:
                        continue
                    yield record


def _time(record: dict[str, Any]) -> float:
    value = record.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


def default_sink(flags: GlobalFlags | None = None) -> Sink:
    """The sink of the phase store the environment names.

    Raises:
        ConfigurationError: a ``redis://`` URL without the redis extra installed.
    """
    flags = flags or GlobalFlags.from_env(strict=False)
    url = flags.state_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from aurum_otel.forensics.redis_sink import RedisSink  # the optional redis extra
        except ImportError:
            raise ConfigurationError(
                "AURUM_STATE_URL", url.rsplit("@", 1)[-1],
                "a redis:// URL needs the redis extra: pip install 'aurum-otel[redis]'") from None
        return RedisSink(url)
    return FileSink(mismatch_path(flags))


def mismatch_path(flags: GlobalFlags) -> Path:
    """``mismatches.jsonl`` beside the state file."""
    url = flags.state_url
    if url and url.startswith("file://"):
        target = Path(url[len("file://"):])
        return (target.parent if target.suffix == ".json" else target) / FILE_NAME
    return flags.state_dir / FILE_NAME

"""Small file primitives shared by the state and metrics files: lock, atomic write, keep aside."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aurum_otel.errors import CorruptStateError, StateError


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path``'s sidecar ``.lock`` file."""
    ensure_dir(path.parent)
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(
            f"cannot create the lock file {lock_path}: {exc.strerror}; make the directory "
            "writable or point AURUM_STATE_DIR elsewhere",
            path=str(path),
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the directory {directory}: {exc.strerror}; point AURUM_STATE_DIR "
            "at a writable directory",
            path=str(directory),
        ) from None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, ``None`` when the file does not exist.

    Raises:
        CorruptStateError: the file is not readable or not a JSON object (it is left in place).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptStateError(f"cannot read {path}: {exc}", path=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptStateError(f"{path} is not valid JSON ({exc})", path=str(path)) from None
    if not isinstance(data, dict):
        raise CorruptStateError(f"{path} does not hold a JSON object", path=str(path))
    return data


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a 0600 temporary file and a rename, never half-written."""
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StateError(
            f"cannot write in {path.parent}: {exc.strerror}; make it writable or point "
            "AURUM_STATE_DIR elsewhere",
            path=str(path),
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def move_aside(path: Path) -> Path:
    """Rename a bad file to ``<name>.corrupt-<UTC time>`` so that nothing overwrites it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    return target

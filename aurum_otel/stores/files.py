"""Small file primitives shared by the state and metrics files: lock, atomic write, keep aside.

They know nothing of phases: the file store and the metrics file both build on them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
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
        # Never through a symbolic link: a planted link would make us create or lock any file.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(
                f"the lock file {lock_path} is a symbolic link: refusing to follow it; remove it "
                f"(rm {lock_path}) and check who can write in {path.parent}",
                path=str(path),
            ) from None
        raise StateError(
            f"cannot create the lock file {lock_path}: {exc.strerror}; make the directory "
            "writable or point AURUM_STATE_DIR elsewhere",
            path=str(path),
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"the lock file {lock_path} is not a regular file; remove it",
                             path=str(path))
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


def check_trusted_dir(directory: Path) -> None:
    """Refuse, as ssh does, a directory another user could write in or that another user owns.

    Raises:
        StateError: naming the directory and the command that fixes it.
    """
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot stat the state directory {directory}: {exc.strerror}",
                         path=str(directory)) from None
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise StateError(
            f"the state directory {directory} is owned by uid {info.st_uid}, not by this user "
            f"(uid {me}): another user could change every phase; run `chown {me} {directory}` "
            "or point AURUM_STATE_DIR at a directory of your own",
            path=str(directory),
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateError(
            f"the state directory {directory} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):o}): anyone could change every phase; run "
            f"`chmod go-w {directory}` (aurum-otel creates it 0700)",
            path=str(directory),
        )


def clean_stale_temps(path: Path) -> list[Path]:
    """Remove temporary files of ``path`` left by a writer killed mid-write.

    Only call this holding :func:`locked` on ``path``: every writer of ``path`` holds it, so any
    temporary file of ``path`` that exists then belongs to a writer that died.
    """
    removed = []
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f"{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if candidate.is_file() and not candidate.is_symlink():
                    candidate.unlink()
                    removed.append(candidate)
    return removed


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

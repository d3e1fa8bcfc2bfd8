"""One ``watch`` per migration: a lease held while a controller drives it.

With the file store the lease is an exclusive ``flock`` on ``<name>.watch.lease`` in the state
directory, holding who holds it (pid, host, since); the kernel releases it when the holder dies,
so a waiting ``watch`` takes over at its next poll. With the Redis store it is a key set with
``SET NX PX`` and renewed at a third of its time to live; a dead holder's key expires.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aurum_otel.errors import AurumOtelError, StateError
from aurum_otel.stores.files import check_trusted_dir, ensure_dir

DEFAULT_TTL = 30.0
"""Seconds a Redis lease lives without renewal (a dead holder's lease expires after this)."""

RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLostError(AurumOtelError):
    """This ``watch`` no longer holds its migration's lease (it stops driving the migration)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or wants) a lease."""

    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    since: float = field(default_factory=time.time)
    actor: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        who = f"{self.actor} " if self.actor else ""
        return f"{who}pid {self.pid} on {self.host} since {when}"

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "since": self.since,
                           "actor": self.actor, "token": self.token})

    @classmethod
    def from_json(cls, raw: Any) -> Holder | None:
        try:
            data = json.loads(raw)
            return cls(int(data["pid"]), str(data["host"]), float(data["since"]),
                       str(data.get("actor", "")), str(data.get("token", "")))
        except (TypeError, ValueError, KeyError):
            return None


class Lease(Protocol):
    """A lease on one migration."""

    ttl: float

    @property
    def location(self) -> str: ...

    def try_acquire(self) -> bool: ...

    def renew(self) -> bool:
        """Extend the lease; ``False`` when it is no longer ours."""
        ...

    def holder(self) -> Holder | None: ...

    def release(self) -> None: ...


class FileLease:
    """An exclusive ``flock`` on ``<directory>/<name>.watch.lease``."""

    ttl = 0.0  # the kernel releases the lock the moment its holder dies

    def __init__(self, directory: Path, name: str, me: Holder) -> None:
        self.path = Path(directory) / f"{name}.watch.lease"
        self.me = me
        self._fd: int | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        ensure_dir(self.path.parent)
        check_trusted_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open the lease file {self.path}: {exc.strerror}; remove it "
                             "if it is a link, or make the state directory writable",
                             path=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise StateError(f"cannot lock {self.path}: {exc.strerror}", path=str(self.path)) \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.me.to_json().encode(), 0)
        self._fd = fd
        return True

    def renew(self) -> bool:
        return self._fd is not None

    def holder(self) -> Holder | None:
        try:
            return Holder.from_json(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class RedisLease:
    """A key ``<prefix>:lease:<name>`` set with ``SET NX PX`` and renewed by its holder."""

    def __init__(self, client: Any, key: str, me: Holder, ttl: float = DEFAULT_TTL,
                 location: str = "redis") -> None:
        self.client, self.key, self.me, self.ttl = client, key, me, ttl
        self._value = me.to_json()
        self._location = location

    @property
    def location(self) -> str:
        return f"{self._location} key {self.key}"

    def try_acquire(self) -> bool:
        return bool(self.client.set(self.key, self._value, nx=True, px=int(self.ttl * 1000)))

    def renew(self) -> bool:
        return bool(self.client.eval(RENEW_SCRIPT, 1, self.key, self._value,
                                     int(self.ttl * 1000)))

    def holder(self) -> Holder | None:
        raw = self.client.get(self.key)
        return Holder.from_json(raw) if raw is not None else None

    def release(self) -> None:
        self.client.eval(RELEASE_SCRIPT, 1, self.key, self._value)


class LeaseKeeper:
    """Acquires a lease (waiting for it), renews it on a background thread, says when it is lost.

    Args:
        lease: the lease.
        poll: seconds between tries while another holder has it.
        on_wait: called with the holder (or ``None`` when unknown) each time it changes.
    """

    def __init__(self, lease: Lease, *, poll: float = 1.0,
                 on_wait: Callable[[Holder | None], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lease, self.poll, self.on_wait, self.clock = lease, poll, on_wait, clock
        self.waited = 0.0
        self.contended = False  # another holder had it when we first asked
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._thread is not None and not self._lost.is_set()

    def acquire(self, stop: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Wait until the lease is ours (``False``: stopped or timed out first)."""
        stop = stop or threading.Event()
        started = self.clock()
        seen: object = object()
        while not self.lease.try_acquire():
            self.contended = True
            holder = self.lease.holder()
            key = (holder.token if holder else None)
            if key != seen and self.on_wait is not None:
                self.on_wait(holder)
            seen = key
            if timeout is not None and self.clock() - started >= timeout:
                return False
            if stop.wait(self.poll):
                return False
        self.waited = self.clock() - started
        if self.lease.ttl > 0:
            self._thread = threading.Thread(target=self._renew, name="aurum-lease", daemon=True)
            self._thread.start()
        else:
            self._thread = threading.current_thread()  # held until released: nothing to renew
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.lease.ttl / 3):
            try:
                if not self.lease.renew():
                    self._lost.set()
                    return
            except Exception:  # a store down: the lease may expire; say so at the next tick
                if self._stop.wait(0):
                    return
                continue

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when the lease is no longer ours."""
        if self._lost.is_set():
            holder = self.lease.holder()
            raise LeaseLostError(
                f"this watch lost its lease ({self.lease.location})"
                + (f" to {holder.describe()}" if holder else "")
                + "; it stopped driving the migration: run watch again to wait for the lease")

    def release(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        with contextlib.suppress(Exception):
            self.lease.release()

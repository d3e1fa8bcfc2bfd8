"""The read side of the Redis store: the records in memory and the thread that keeps them fresh.

The thread subscribes to the store's channel, reloads a migration when a transition is announced,
and re-reads the index every ``poll_interval`` seconds as a safety net (and after every
reconnection, when announcements may have been missed). Readers of :meth:`RedisReader.snapshot` get
the cached :class:`~aurum_otel.stores.model.Snapshot`: no I/O.

When Redis goes away the snapshot keeps the last records (no ``problem``: calls go on in the last
known phase) while the thread reconnects with a capped, jittered backoff and resubscribes. Only a
reader that has never reached Redis reports a ``problem`` (calls then run on legacy).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, cast

from redis.exceptions import RedisError

from aurum_otel.errors import CorruptStateError, StateError
from aurum_otel.stores.base import Listener
from aurum_otel.stores.model import MigrationRecord, Snapshot
from aurum_otel.stores.redis_codec import RedisKeys, decode_history, decode_record, text, version_of

logger = logging.getLogger("aurum_otel.store")

RECONNECT_MIN = 0.05
RECONNECT_MAX = 1.0

_Loaded = Mapping[str, tuple[int, MigrationRecord | CorruptStateError | None]]


class RedisReader:
    """The cached records of one Redis store, kept fresh by a background thread."""

    def __init__(self, client: Any, keys: RedisKeys, *, history_limit: int, poll_interval: float,
                 location: str) -> None:
        self._client = client
        self._keys = keys
        self.history_limit = history_limit
        self.poll_interval = poll_interval
        self._location = location
        self._lock = threading.Lock()
        self._records: dict[str, MigrationRecord] = {}
        self._versions: dict[str, int] = {}
        self._corrupt: dict[str, CorruptStateError] = {}
        self._touched: dict[str, int] = {}
        self._applied = 0
        self._loaded = False
        self._snapshot = Snapshot({}, StateError(
            f"phase store {location} has not been reached yet", path=location))
        self._connected = False
        self._last_error: str | None = None
        self._ready = threading.Event()
        self._waited = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._listeners: list[Listener] = []
        _READERS.add(self)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def current(self) -> Snapshot:
        """The cached snapshot, without starting or waiting for anything."""
        return self._snapshot

    def snapshot(self, initial_wait: float) -> Snapshot:
        """The cached snapshot; the first call waits up to ``initial_wait`` for the first load."""
        if self._thread is None:
            self.start()
        if not self._waited:
            # Once per store (per process): a silent Redis must not stall every refresh of every
            # caller; after this, calls use what is in memory until the reader brings news.
            self._waited = True
            self._ready.wait(initial_wait)
        return self._snapshot

    def add_listener(self, callback: Listener) -> None:
        with self._lock:
            self._listeners.append(callback)

    # ------------------------------------------------------------------ loading

    def poll(self) -> None:
        """Re-read the index; reload the migrations whose version changed, drop deleted ones."""
        with self._lock:
            started = self._applied
            known = dict(self._versions)
        index = cast(Mapping[Any, Any], self._client.hgetall(self._keys.index))
        versions: dict[str, int] = {}
        for key, value in index.items():
            try:
                versions[text(key)] = int(text(value))
            except ValueError:
                versions[text(key)] = -1
        changed = [name for name, version in versions.items()
                   if version < 0 or known.get(name) != version]
        gone = [name for name in known if name not in versions]
        self.apply(self.load([*changed, *gone]), complete=True, since=started)

    def reload(self, name: str) -> None:
        """Read ``name`` again now (after this process wrote it)."""
        self.apply(self.load([name]))

    def load(self, names: Iterable[str]) -> dict[str, tuple[int, MigrationRecord | CorruptStateError
                                                             | None]]:
        """Read the named migrations atomically: name -> (version, record, corrupt or None=gone)."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        with self._client.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.hgetall(self._keys.migration(name))
                pipe.lrange(self._keys.history(name), -self.history_limit, -1)
            replies = pipe.execute()
        loaded: dict[str, tuple[int, MigrationRecord | CorruptStateError | None]] = {}
        for position, name in enumerate(names):
            raw = {text(k): text(v) for k, v in replies[2 * position].items()}
            if not raw:
                loaded[name] = (0, None)
                continue
            version = version_of(raw)
            history = decode_history(name, replies[2 * position + 1], self._location)
            try:
                loaded[name] = (version, decode_record(raw, history))
            except CorruptStateError as exc:
                loaded[name] = (version, CorruptStateError(
                    f"{self._location}: the record of migration {name!r} "
                    f"({self._keys.migration(name)}) is not an aurum-otel record ({exc}); it runs "
                    f"on legacy, and the next transition keeps the record aside under "
                    f"{self._keys.corrupt(name)}",
                    path=self._location,
                ))
        return loaded

    def apply(self, loaded: _Loaded, *, complete: bool = False, since: int | None = None) -> None:
        changed: list[str] = []
        with self._lock:
            for name, (version, record) in loaded.items():
                if record is None:
                    # Gone from Redis: forget it, unless something newer arrived meanwhile.
                    if since is not None and self._touched.get(name, 0) > since:
                        continue
                    if name in self._records or name in self._corrupt:
                        changed.append(name)
                        logger.warning(
                            "phase store %s no longer holds migration %r (deleted, or Redis "
                            "restarted without its data): it runs on the default phase until the "
                            "next transition", self._location, name)
                    self._records.pop(name, None)
                    self._corrupt.pop(name, None)
                    self._versions.pop(name, None)
                    continue
                if version < self._versions.get(name, -1):
                    continue  # an older read than what we have
                self._applied += 1
                self._touched[name] = self._applied
                self._versions[name] = version
                if isinstance(record, CorruptStateError):
                    if name not in self._corrupt:
                        logger.error("%s; calls run on legacy until then", record)
                        changed.append(name)
                    self._corrupt[name] = record
                    self._records.pop(name, None)
                else:
                    self._corrupt.pop(name, None)
                    if self._records.get(name) != record:
                        changed.append(name)
                    self._records[name] = record
            if complete:
                self._loaded = True
            if self._loaded:
                # A bad record affects only its own migration.
                self._snapshot = Snapshot(dict(self._records), None,
                                          {n: str(e) for n, e in self._corrupt.items()})
            listeners = list(self._listeners)
        if complete:
            self.mark_up()
            self._ready.set()
        for name in changed:
            for callback in listeners:
                try:
                    callback(name)
                except Exception:
                    logger.exception("phase store listener %r failed", callback)

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"aurum-otel redis store {self._location}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        pubsub: Any = None
        subscribed = False
        next_poll = float("inf")
        delay = RECONNECT_MIN
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = cast(Any, self._client).pubsub()
                    pubsub.subscribe(self._keys.channel)
                now = time.monotonic()
                message = pubsub.get_message(timeout=max(0.0, min(1.0, next_poll - now)))
                if message is not None:
                    kind = text(message.get("type"))
                    if kind == "subscribe":
                        # Subscribed (again): announcements from now on reach us; catch up on
                        # whatever happened while we were not listening.
                        subscribed = True
                        self.poll()
                        next_poll = time.monotonic() + self.poll_interval
                    elif kind == "message":
                        self._on_message(message.get("data"))
                if subscribed and time.monotonic() >= next_poll:
                    self.poll()
                    next_poll = time.monotonic() + self.poll_interval
                delay = RECONNECT_MIN
            except Exception as exc:
                if self._stop.is_set():
                    break  # close() cut the connection under us
                if not isinstance(exc, (OSError, RedisError)):
                    logger.exception("phase store %s: reader failed; restarting it", self._location)
                self._mark_down(exc)
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
                pubsub, subscribed, next_poll = None, False, float("inf")
                self._ready.set()  # the first attempt is over, whatever it found
                # Jittered, so that a fleet does not reconnect in lockstep when Redis comes back.
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX)
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass

    def _on_message(self, data: Any) -> None:
        try:
            announced = json.loads(text(data))
            name, version = str(announced["name"]), int(announced["version"])
        except (ValueError, KeyError, TypeError):
            self.poll()
            return
        with self._lock:
            known = self._versions.get(name, -1)
        if version > known:
            self.apply(self.load([name]))

    def mark_up(self) -> None:
        if not self._connected:
            if self._last_error is not None:
                logger.warning("phase store %s is reachable again", self._location)
            self._connected = True
            self._last_error = None

    def _mark_down(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        first = self._connected or self._last_error is None
        self._connected = False
        self._last_error = error
        if not first:
            return
        if self._loaded:
            logger.warning(
                "phase store %s unreachable (%s); calls keep the last known phases, transitions "
                "fail until it is back; reconnecting", self._location, error)
        else:
            message = (f"phase store {self._location} unreachable ({error}): calls run on legacy "
                       "until it answers; check that redis-server is running and reachable and "
                       "the host, port, db and password in AURUM_STATE_URL")
            logger.error("%s", message)
            with self._lock:
                if not self._loaded:
                    self._snapshot = Snapshot({}, StateError(message, path=self._location))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the thread and close the client's connections."""
        self._stop.set()
        self._ready.set()
        # Closing the connections first wakes a reader blocked on a silent server.
        self._client.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _after_fork(self) -> None:
        # The thread does not survive fork(): a child starts its own on first use. Locks may have
        # been held by threads that no longer exist. The cached records stay valid.
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._thread = None


_READERS: weakref.WeakSet[RedisReader] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for reader in list(_READERS):
        reader._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

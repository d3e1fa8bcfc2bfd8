"""A phase store shared by a fleet of processes, on Redis (``AURUM_STATE_URL=redis://host:port/db``).

Layout (``prefix`` defaults to ``aurum``)::

    <prefix>:migration:<name>   hash: phase, rollout (JSON), updated_at, version, actor, reason
    <prefix>:history:<name>     list: one JSON transition per entry, oldest first, capped
    <prefix>:migrations         hash: name -> version (the index of migrations)
    <prefix>:transitions        pub/sub channel: {"name": ..., "version": ...} after each transition

A transition is a compare-and-set: ``WATCH`` the migration's hash, read it, check ``expected``, then
``MULTI``/``EXEC`` the new record, the history entry, the index and the ``PUBLISH``. Of two
controllers that race with the same ``expected`` exactly one wins; the other gets
:class:`~aurum_otel.errors.TransitionConflictError`. Without ``expected`` a lost race is retried, so
concurrent transitions serialize and none is lost.

Reading is off the call path: a background thread subscribes to the channel, reloads a migration
when a transition is announced, and re-reads the index every ``poll_interval`` seconds as a safety
net (and after every reconnection, when announcements may have been missed). :meth:`snapshot`
returns the cached :class:`~aurum_otel.store.Snapshot`: a dictionary lookup, no I/O.

When Redis goes away, :meth:`snapshot` keeps returning the last records it had (no ``problem``:
calls go on in the last known phase) while the thread reconnects with a capped backoff and
resubscribes; :meth:`transition` raises a :class:`~aurum_otel.errors.StateError` that says what to
check. Only a store that has never reached Redis reports a ``problem`` (calls then run on legacy,
as with an unreadable state file).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from aurum_otel.errors import ConfigurationError, CorruptStateError, StateError, TransitionConflictError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.store import (
    MigrationRecord,
    Snapshot,
    Transition,
    WatchState,
    check_expected,
    new_transition_id,
)

logger = logging.getLogger("aurum_otel.store")

__all__ = ["RedisStore"]

DEFAULT_PREFIX = "aurum"
DEFAULT_HISTORY_LIMIT = 1_000
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_INITIAL_WAIT = 1.0
CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
HEALTH_CHECK_INTERVAL = 10
RECONNECT_MIN = 0.05
RECONNECT_MAX = 1.0
URL_FORM = "redis://[:password@]host[:port][/db][?prefix=aurum&history_limit=1000&poll_interval=5]"
MAX_ATTEMPTS = 100
TRANSITION_ID_TTL = 86_400  # seconds a transition id is remembered for retries
_WRITE_SCRIPT = f"""
if redis.call('EXISTS', KEYS[4]) == 1 then return 'landed' end
local version = redis.call('HGET', KEYS[1], 'version')
if (version or '') ~= ARGV[2] then return 'moved' end
if ARGV[10] ~= '' then
  local aside = cjson.decode(ARGV[10])
  redis.call('HSET', KEYS[5], 'record', aside['record'], 'error', aside['error'], 'at', aside['at'])
end
local record = cjson.decode(ARGV[3])
for field, value in pairs(record) do redis.call('HSET', KEYS[1], field, value) end
redis.call('HDEL', KEYS[1], 'watch')
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
redis.call('HSET', KEYS[3], ARGV[6], ARGV[9])
redis.call('SET', KEYS[4], '1', 'EX', {TRANSITION_ID_TTL})
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 'written'
"""
_SAVE_WATCH_SCRIPT = """
if redis.call('HGET', KEYS[1], 'transition_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'watch', ARGV[2])
return 1
"""
_OWN_PARAMETERS = ("prefix", "history_limit", "poll_interval")
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisStore:
    """A :class:`~aurum_otel.store.PhaseStore` on Redis, for many processes and hosts.

    Args:
        client: a ``redis.Redis`` client (build one with :meth:`from_url` to get aurum-otel's
            timeouts and retry policy).
        prefix: namespace of every key and of the notification channel.
        history_limit: transitions kept per migration (older ones are trimmed).
        poll_interval: seconds between the safety-net re-reads of the index.
        initial_wait: how long the first :meth:`snapshot` waits for the first load (once: later
            calls never wait on the network).
        location: how the store is named in messages (default: host, port and db of ``client``).
        start: start the background reader now (otherwise on the first :meth:`snapshot`).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        initial_wait: float = DEFAULT_INITIAL_WAIT,
        location: str | None = None,
        start: bool = True,
    ) -> None:
        if history_limit < 1:
            raise ConfigurationError("history_limit", history_limit, "an integer >= 1")
        if poll_interval <= 0:
            raise ConfigurationError("poll_interval", poll_interval, "seconds > 0")
        self._client = client
        self.prefix = prefix
        self.history_limit = history_limit
        self.poll_interval = poll_interval
        self.initial_wait = initial_wait
        self.channel = f"{prefix}:transitions"
        self._index_key = f"{prefix}:migrations"
        self._location = location or _describe_client(client)
        self._lock = threading.Lock()
        self._records: dict[str, MigrationRecord] = {}
        self._versions: dict[str, int] = {}
        self._corrupt: dict[str, CorruptStateError] = {}
        self._touched: dict[str, int] = {}
        self._applied = 0
        self._loaded = False
        self._snapshot = Snapshot({}, StateError(
            f"phase store {self._location} has not been reached yet", path=self._location))
        self._connected = False
        self._last_error: str | None = None
        self._ready = threading.Event()
        self._waited = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._script = client.register_script(_WRITE_SCRIPT)
        self._save_watch_script = client.register_script(_SAVE_WATCH_SCRIPT)
        _STORES.add(self)
        if start:
            self._ensure_thread()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store on the Redis server ``url`` names (``redis://``, ``rediss://`` or ``unix://``).

        ``prefix``, ``history_limit`` and ``poll_interval`` may be given as query parameters or
        keyword arguments; the rest of the URL (password, db, TLS options) is redis-py's.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError("AURUM_STATE_URL", _redact(url), URL_FORM)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in query if key in _OWN_PARAMETERS}
        rest = [(key, value) for key, value in query if key not in _OWN_PARAMETERS]
        try:
            if "prefix" in own:
                options.setdefault("prefix", own["prefix"])
            if "history_limit" in own:
                options.setdefault("history_limit", int(own["history_limit"]))
            if "poll_interval" in own:
                options.setdefault("poll_interval", float(own["poll_interval"]))
        except ValueError:
            raise ConfigurationError("AURUM_STATE_URL", _redact(url), URL_FORM) from None
        redis_url = urlunsplit(parts._replace(query=urlencode(rest)))
        try:
            client = redis.Redis.from_url(
                redis_url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                socket_keepalive=True,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2),
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("AURUM_STATE_URL", _redact(url), f"{URL_FORM} ({exc})") from None
        options.setdefault("location", _redact(url))
        return cls(client, **options)

    # ------------------------------------------------------------------ reading

    @property
    def location(self) -> str:
        return self._location

    @property
    def connected(self) -> bool:
        """Whether the last exchange with Redis succeeded."""
        return self._connected

    @property
    def last_error(self) -> str | None:
        """Why Redis could not be reached, while it cannot."""
        return self._last_error

    def snapshot(self) -> Snapshot:
        """The cached contents (no I/O): refreshed by notifications and the safety-net poll.

        While Redis is unreachable this is the last known contents, without ``problem``; a store
        that never reached Redis returns no records and a ``problem``.
        """
        if self._thread is None:
            self._ensure_thread()
        if not self._waited:
            # Once per store (per process): a silent Redis must not stall every refresh of every
            # caller; after this, calls use what is in memory until the reader brings news.
            self._waited = True
            self._ready.wait(self.initial_wait)
        return self._snapshot

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` (from the reader thread) whenever a migration's record changes."""
        with self._lock:
            self._listeners.append(callback)

    def refresh(self) -> Snapshot:
        """Re-read everything now (raises :class:`StateError` if Redis cannot be reached)."""
        try:
            self._poll()
        except _UNREACHABLE as exc:
            raise self._unreachable("read the phases", exc) from exc
        except RedisError as exc:
            raise StateError(f"phase store {self._location} refused a read: {exc}",
                             path=self._location) from exc
        return self._snapshot

    # ------------------------------------------------------------------ writing

    def transition(
        self,
        name: str,
        to_phase: Phase,
        rollout: Rollout | None = None,
        *,
        actor: str,
        reason: str,
        expected: Phase | None = None,
        expected_rollout: Rollout | None = None,
    ) -> Transition:
        """Write a transition atomically (WATCH/MULTI/EXEC) and announce it on the channel.

        Raises:
            TransitionConflictError: ``expected`` is given and the phase in Redis is another.
            StateError: Redis cannot be reached or refused the write; nothing was changed.
        """
        key = self._key(name)
        try:
            for _ in range(MAX_ATTEMPTS):
                raw = {_text(k): _text(v) for k, v in cast(
                    Mapping[Any, Any], self._client.hgetall(key)).items()}
                change, version = self._next(name, raw, to_phase, rollout, actor, reason,
                                             expected, expected_rollout)
                if self._write(name, raw, change, version) != "moved":
                    break  # written, or written by an earlier try whose reply was lost
                # another writer got in between: read again and decide again
            else:
                raise StateError(
                    f"phase store {self._location}: the record of {name!r} kept changing under "
                    f"{MAX_ATTEMPTS} attempts; nothing was changed, try again",
                    path=self._location)
        except TransitionConflictError:
            raise
        except AuthenticationError as exc:
            raise StateError(
                f"phase store {self._location} refused the credentials ({exc}); the phase of "
                f"{name!r} was NOT changed: check the password/user in AURUM_STATE_URL",
                path=self._location,
            ) from exc
        except _UNREACHABLE as exc:
            raise self._unreachable(f"change the phase of {name!r}", exc) from exc
        except RedisError as exc:
            raise StateError(
                f"phase store {self._location} refused the transition of {name!r} ({exc}); the "
                "phase was NOT changed: check that the URL names a Redis server (db, ACL "
                "permissions for HSET/RPUSH/LTRIM/PUBLISH/WATCH/MULTI)",
                path=self._location,
            ) from exc
        self._mark_up()
        try:
            self._apply(self._load([name]))
        except RedisError:
            pass  # written: the notification or the next poll brings it in
        return change

    def save_watch(self, name: str, watch: WatchState) -> bool:
        """Keep a controller's state of the current step; ``False`` when the step has changed."""
        try:
            result = self._save_watch_script(keys=[self._key(name)], args=[
                watch.transition_id, json.dumps(watch.to_dict())])
        except RedisError as exc:
            raise StateError(f"phase store {self._location}: could not keep the watch state of "
                             f"{name!r} ({exc})", path=self._location) from exc
        return bool(result)

    def _write(self, name: str, raw: Mapping[str, str], change: Transition, version: int) -> str:
        """Run the write script: ``written``, ``landed`` (a retry of a write that had landed) or
        ``moved`` (the record changed since it was read; nothing was written)."""
        corrupt_record = ""
        try:
            if raw:
                _record(raw, ())
        except CorruptStateError as exc:
            corrupt_record = json.dumps({"record": json.dumps(dict(raw)), "error": str(exc),
                                         "at": repr(change.at)})
        record = {
            "phase": change.to_phase.value,
            "rollout": json.dumps(change.rollout.to_dict()),
            "updated_at": repr(change.at),
            "version": str(version),
            "actor": change.actor,
            "reason": change.reason,
            "transition_id": change.id,
        }
        _record(record, ())  # never write what readers reject
        keys = [self._key(name), self._history_key(name), self._index_key,
                f"{self.prefix}:transition:{change.id}", f"{self.prefix}:corrupt:{name}"]
        args = [change.id, raw.get("version", ""), json.dumps(record),
                json.dumps(change.to_dict()), str(self.history_limit), name, self.channel,
                json.dumps({"name": name, "version": version}), str(version), corrupt_record]
        # One script, atomic on the server, that first checks whether this very transition has
        # landed: redis-py retries a command whose reply was lost, and so do we.
        result = self._script(keys=keys, args=args)
        return _text(result)

    def _next(
        self,
        name: str,
        raw: Mapping[str, str],
        to_phase: Phase,
        rollout: Rollout | None,
        actor: str,
        reason: str,
        expected: Phase | None,
        expected_rollout: Rollout | None = None,
    ) -> tuple[Transition, int]:
        try:
            version = int(raw.get("version", "0"))
        except ValueError:
            version = 0
        try:
            current = _record(raw, ()) if raw else MigrationRecord()
        except CorruptStateError as exc:
            logger.warning("phase store %s: the record of %r was corrupt (%s); keeping it aside "
                           "under %s:corrupt:%s", self._location, name, exc, self.prefix, name)
            current = MigrationRecord()
        check_expected(name, current.phase, current.rollout, expected, expected_rollout)
        change = Transition(
            name=name,
            from_phase=current.phase,
            to_phase=Phase.parse(to_phase),
            rollout=rollout if rollout is not None else current.rollout,
            actor=actor,
            reason=reason,
            at=time.time(),
            id=new_transition_id(),
        )
        return change, version + 1

    # ------------------------------------------------------------------ loading

    def _key(self, name: str) -> str:
        return f"{self.prefix}:migration:{name}"

    def _history_key(self, name: str) -> str:
        return f"{self.prefix}:history:{name}"

    def _poll(self) -> None:
        """Re-read the index; reload the migrations whose version changed, drop deleted ones."""
        with self._lock:
            started = self._applied
            known = dict(self._versions)
        index = cast(Mapping[Any, Any], self._client.hgetall(self._index_key))
        versions: dict[str, int] = {}
        for key, value in index.items():
            try:
                versions[_text(key)] = int(_text(value))
            except ValueError:
                versions[_text(key)] = -1
        changed = [name for name, version in versions.items()
                   if version < 0 or known.get(name) != version]
        gone = [name for name in known if name not in versions]
        self._apply(self._load([*changed, *gone]), complete=True, since=started)

    def _load(self, names: Iterable[str]) -> dict[str, tuple[int, MigrationRecord | CorruptStateError
                                                              | None]]:
        """Read the named migrations atomically: name -> (version, record, corrupt or None=gone)."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        with self._client.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.hgetall(self._key(name))
                pipe.lrange(self._history_key(name), -self.history_limit, -1)
            replies = pipe.execute()
        loaded: dict[str, tuple[int, MigrationRecord | CorruptStateError | None]] = {}
        for position, name in enumerate(names):
            raw = {_text(k): _text(v) for k, v in replies[2 * position].items()}
            if not raw:
                loaded[name] = (0, None)
                continue
            try:
                version = int(raw.get("version", "0"))
            except ValueError:
                version = 0
            history = self._history(name, replies[2 * position + 1])
            try:
                loaded[name] = (version, _record(raw, history))
            except CorruptStateError as exc:
                loaded[name] = (version, CorruptStateError(
                    f"{self._location}: the record of migration {name!r} ({self._key(name)}) is "
                    f"not an aurum-otel record ({exc}); it runs on legacy, and the next "
                    f"transition keeps the record aside under {self.prefix}:corrupt:{name}",
                    path=self._location,
                ))
        return loaded

    def _history(self, name: str, items: Iterable[Any]) -> tuple[Transition, ...]:
        history = []
        for item in items:
            try:
                history.append(Transition.from_dict(name, json.loads(_text(item))))
            except (ValueError, KeyError, TypeError, AttributeError):
                logger.debug("phase store %s: skipped an unreadable history entry of %r",
                             self._location, name)
        return tuple(history)

    def _apply(
        self,
        loaded: Mapping[str, tuple[int, MigrationRecord | CorruptStateError | None]],
        *,
        complete: bool = False,
        since: int | None = None,
    ) -> None:
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
            self._mark_up()
            self._ready.set()
        for name in changed:
            for callback in listeners:
                try:
                    callback(name)
                except Exception:
                    logger.exception("phase store listener %r failed", callback)

    # ------------------------------------------------------------------ the reader thread

    def _ensure_thread(self) -> None:
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
                    pubsub.subscribe(self.channel)
                now = time.monotonic()
                message = pubsub.get_message(timeout=max(0.0, min(1.0, next_poll - now)))
                if message is not None:
                    kind = _text(message.get("type"))
                    if kind == "subscribe":
                        # Subscribed (again): announcements from now on reach us; catch up on
                        # whatever happened while we were not listening.
                        subscribed = True
                        self._poll()
                        next_poll = time.monotonic() + self.poll_interval
                    elif kind == "message":
                        self._on_message(message.get("data"))
                if subscribed and time.monotonic() >= next_poll:
                    self._poll()
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
            announced = json.loads(_text(data))
            name, version = str(announced["name"]), int(announced["version"])
        except (ValueError, KeyError, TypeError):
            self._poll()
            return
        with self._lock:
            known = self._versions.get(name, -1)
        if version > known:
            self._apply(self._load([name]))

    def _mark_up(self) -> None:
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

    def _unreachable(self, action: str, exc: BaseException) -> StateError:
        return StateError(
            f"cannot {action}: phase store {self._location} is unreachable "
            f"({type(exc).__name__}: {exc}); nothing was changed. Check that redis-server is "
            "running and reachable from this host (redis-cli -u <url> ping), and the host, port, "
            "db and password in AURUM_STATE_URL",
            path=self._location,
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the reader thread and close the connections."""
        self._stop.set()
        self._ready.set()
        # Closing the connections first wakes a reader blocked on a silent server.
        self._client.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._location!r}, prefix={self.prefix!r})"

    def _after_fork(self) -> None:
        # The reader thread does not survive fork(): a child starts its own on first use. Locks may
        # have been held by threads that no longer exist. The cached records stay valid.
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._thread = None


def _record(raw: Mapping[str, str], history: tuple[Transition, ...]) -> MigrationRecord:
    try:
        return MigrationRecord(
            phase=Phase(raw["phase"]),
            rollout=Rollout.from_dict(json.loads(raw.get("rollout") or "{}")),
            updated_at=float(raw.get("updated_at", "0")),
            history=history,
            transition_id=raw.get("transition_id", ""),
            watch=WatchState.from_dict(json.loads(raw["watch"])) if raw.get("watch") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStateError(f"{type(exc).__name__}: {exc}", path="") from None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(key == "password" for key, _ in query):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
    redacted = urlencode([(key, "***" if key == "password" else value) for key, value in query],
                         safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=redacted))


def _describe_client(client: redis.Redis) -> str:
    kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

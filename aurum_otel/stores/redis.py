"""A phase store shared by a fleet of processes, on Redis (``AURUM_STATE_URL=redis://host:port/db``).

The parts, one module each: the key layout and record encoding (:mod:`.redis_codec`), the
compare-and-set transition script (:mod:`.redis_transitions`), the records in memory and the thread
that keeps them fresh (:mod:`.redis_reader`), the URL and client settings (:mod:`.redis_connection`).

A transition is a compare-and-set: of two controllers that race with the same ``expected`` exactly
one wins; the other gets :class:`~aurum_otel.errors.TransitionConflictError`. Without ``expected`` a
lost race is retried, so concurrent transitions serialize and none is lost.

Reading is off the call path: :meth:`RedisStore.snapshot` returns the records a background thread
keeps up to date (a dictionary lookup, no I/O). When Redis goes away, calls go on in the last known
phases while the thread reconnects; :meth:`RedisStore.transition` raises a
:class:`~aurum_otel.errors.StateError` that says what to check. Only a store that has never reached
Redis reports a ``problem`` (calls then run on legacy, as with an unreadable state file).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.exceptions import AuthenticationError, RedisError

from aurum_otel.errors import ConfigurationError, StateError, TransitionConflictError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.base import Listener, PhaseStoreBase
from aurum_otel.stores.model import Snapshot, Transition, WatchState
from aurum_otel.stores.redis_codec import DEFAULT_PREFIX, RedisKeys
from aurum_otel.stores.redis_connection import (
    UNREACHABLE,
    URL_FORM,
    client_from_url,
    describe_client,
    redact,
    unreachable,
)
from aurum_otel.stores.redis_reader import RedisReader
from aurum_otel.stores.redis_transitions import TransitionWriter

logger = logging.getLogger("aurum_otel.store")

__all__ = ["DEFAULT_PREFIX", "URL_FORM", "RedisStore"]

DEFAULT_HISTORY_LIMIT = 1_000
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_INITIAL_WAIT = 1.0
MAX_ATTEMPTS = 100


class RedisStore(PhaseStoreBase):
    """A :class:`~aurum_otel.stores.base.PhaseStore` on Redis, for many processes and hosts.

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
        keys = RedisKeys(prefix)
        self.channel = keys.channel
        self._location = location or describe_client(client)
        self._reader = RedisReader(client, keys, history_limit=history_limit,
                                   poll_interval=poll_interval, location=self._location)
        self._writer = TransitionWriter(client, keys, history_limit=history_limit,
                                        location=self._location)
        if start:
            self._reader.start()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store on the Redis server ``url`` names (``redis://``, ``rediss://`` or ``unix://``).

        ``prefix``, ``history_limit`` and ``poll_interval`` may be given as query parameters or
        keyword arguments; the rest of the URL (password, db, TLS options) is redis-py's.
        """
        client = client_from_url(url, options)
        options.setdefault("location", redact(url))
        return cls(client, **options)

    # ------------------------------------------------------------------ reading

    @property
    def location(self) -> str:
        return self._location

    @property
    def connected(self) -> bool:
        """Whether the last exchange with Redis succeeded."""
        return self._reader.connected

    @property
    def last_error(self) -> str | None:
        """Why Redis could not be reached, while it cannot."""
        return self._reader.last_error

    def snapshot(self) -> Snapshot:
        """The cached contents (no I/O): refreshed by notifications and the safety-net poll.

        While Redis is unreachable this is the last known contents, without ``problem``; a store
        that never reached Redis returns no records and a ``problem``.
        """
        return self._reader.snapshot(self.initial_wait)

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(name)`` (from the reader thread) whenever a migration's record changes."""
        self._reader.add_listener(callback)

    def refresh(self) -> Snapshot:
        """Re-read everything now (raises :class:`StateError` if Redis cannot be reached)."""
        try:
            self._reader.poll()
        except UNREACHABLE as exc:
            raise unreachable(self._location, "read the phases", exc) from exc
        except RedisError as exc:
            raise StateError(f"phase store {self._location} refused a read: {exc}",
                             path=self._location) from exc
        return self._reader.current

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
        """Write a transition atomically (compare-and-set) and announce it on the channel.

        Raises:
            TransitionConflictError: ``expected`` is given and the phase in Redis is another.
            StateError: Redis cannot be reached or refused the write; nothing was changed.
        """
        writer = self._writer
        try:
            for _ in range(MAX_ATTEMPTS):
                raw = writer.read(name)
                change, version = writer.next(name, raw, to_phase, rollout, actor, reason,
                                              expected, expected_rollout)
                if writer.write(name, raw, change, version) != "moved":
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
        except UNREACHABLE as exc:
            raise unreachable(self._location, f"change the phase of {name!r}", exc) from exc
        except RedisError as exc:
            raise StateError(
                f"phase store {self._location} refused the transition of {name!r} ({exc}); the "
                "phase was NOT changed: check that the URL names a Redis server (db, ACL "
                "permissions for HSET/RPUSH/LTRIM/PUBLISH/WATCH/MULTI)",
                path=self._location,
            ) from exc
        self._reader.mark_up()
        try:
            self._reader.reload(name)
        except RedisError:
            pass  # written: the notification or the next poll brings it in
        return change

    def save_watch(self, name: str, watch: WatchState) -> bool:
        """Keep a controller's state of the current step; ``False`` when the step has changed."""
        try:
            return self._writer.save_watch(name, watch)
        except RedisError as exc:
            raise StateError(f"phase store {self._location}: could not keep the watch state of "
                             f"{name!r} ({exc})", path=self._location) from exc

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the reader thread and close the connections."""
        self._reader.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._location!r}, prefix={self.prefix!r})"

"""How the Redis store writes: a compare-and-set transition and the controller's watch state.

A transition reads the migration's hash, checks ``expected``, then runs one Lua script, atomic on
the server, that writes only if the record's version is still the one read (``moved`` otherwise:
the caller reads again and decides again) and only once per transition id (``landed``: redis-py
retries a command whose reply was lost, and so do we). The script writes the record, appends the
history entry, updates the index and publishes the announcement.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from aurum_otel.errors import CorruptStateError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.model import (
    MigrationRecord,
    Transition,
    WatchState,
    check_expected,
    new_transition_id,
)
from aurum_otel.stores.redis_codec import (
    RedisKeys,
    decode_record,
    encode_record,
    text,
    text_hash,
    version_of,
)

logger = logging.getLogger("aurum_otel.store")

TRANSITION_ID_TTL = 86_400  # seconds a transition id is remembered for retries
WRITE_SCRIPT = f"""
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
SAVE_WATCH_SCRIPT = """
if redis.call('HGET', KEYS[1], 'transition_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'watch', ARGV[2])
return 1
"""


class TransitionWriter:
    """The write side of one Redis store (redis errors are the caller's to translate)."""

    def __init__(self, client: Any, keys: RedisKeys, *, history_limit: int, location: str) -> None:
        self._client = client
        self._keys = keys
        self._history_limit = history_limit
        self._location = location
        self._script = client.register_script(WRITE_SCRIPT)
        self._save_watch_script = client.register_script(SAVE_WATCH_SCRIPT)

    def read(self, name: str) -> dict[str, str]:
        """The migration's hash as it is now (empty when it has none)."""
        return text_hash(cast(Mapping[Any, Any], self._client.hgetall(self._keys.migration(name))))

    def next(
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
        """The transition from the record ``raw`` and the version it will write.

        Raises:
            TransitionConflictError: ``raw`` is not the ``expected`` phase (and rollout).
        """
        version = version_of(raw)
        try:
            current = decode_record(raw, ()) if raw else MigrationRecord()
        except CorruptStateError as exc:
            logger.warning("phase store %s: the record of %r was corrupt (%s); keeping it aside "
                           "under %s", self._location, name, exc, self._keys.corrupt(name))
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

    def write(self, name: str, raw: Mapping[str, str], change: Transition, version: int) -> str:
        """Run the write script: ``written``, ``landed`` (a retry of a write that had landed) or
        ``moved`` (the record changed since it was read; nothing was written)."""
        corrupt_record = ""
        try:
            if raw:
                decode_record(raw, ())
        except CorruptStateError as exc:
            corrupt_record = json.dumps({"record": json.dumps(dict(raw)), "error": str(exc),
                                         "at": repr(change.at)})
        record = encode_record(change, version)
        keys = [self._keys.migration(name), self._keys.history(name), self._keys.index,
                self._keys.transition(change.id), self._keys.corrupt(name)]
        args = [change.id, raw.get("version", ""), json.dumps(record),
                json.dumps(change.to_dict()), str(self._history_limit), name, self._keys.channel,
                json.dumps({"name": name, "version": version}), str(version), corrupt_record]
        return text(self._script(keys=keys, args=args))

    def save_watch(self, name: str, watch: WatchState) -> bool:
        """Keep ``watch`` in the record; ``False`` when the record's transition is another."""
        result = self._save_watch_script(keys=[self._keys.migration(name)], args=[
            watch.transition_id, json.dumps(watch.to_dict())])
        return bool(result)

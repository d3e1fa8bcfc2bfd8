"""How the Redis store lays out its keys and encodes a migration's record in a hash.

Layout (``prefix`` defaults to ``aurum``)::

    <prefix>:migration:<name>   hash: phase, rollout (JSON), updated_at, version, actor, reason,
                                transition_id, watch (JSON)
    <prefix>:history:<name>     list: one JSON transition per entry, oldest first, capped
    <prefix>:migrations         hash: name -> version (the index of migrations)
    <prefix>:transitions        pub/sub channel: {"name": ..., "version": ...} after each transition
    <prefix>:transition:<id>    set for a day after transition <id> landed (a retry sees it)
    <prefix>:corrupt:<name>     hash: a record that could not be read, kept aside by a transition
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aurum_otel.errors import CorruptStateError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.model import MigrationRecord, Transition, WatchState

logger = logging.getLogger("aurum_otel.store")

DEFAULT_PREFIX = "aurum"


def text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def text_hash(reply: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in reply.items()}


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The names of every key of one store, under ``prefix``."""

    prefix: str = DEFAULT_PREFIX

    @property
    def channel(self) -> str:
        return f"{self.prefix}:transitions"

    @property
    def index(self) -> str:
        return f"{self.prefix}:migrations"

    def migration(self, name: str) -> str:
        return f"{self.prefix}:migration:{name}"

    def history(self, name: str) -> str:
        return f"{self.prefix}:history:{name}"

    def transition(self, transition_id: str) -> str:
        return f"{self.prefix}:transition:{transition_id}"

    def corrupt(self, name: str) -> str:
        return f"{self.prefix}:corrupt:{name}"


def version_of(raw: Mapping[str, str]) -> int:
    """The record's version (0 when it has none or an unreadable one)."""
    try:
        return int(raw.get("version", "0"))
    except ValueError:
        return 0


def decode_record(raw: Mapping[str, str], history: tuple[Transition, ...]) -> MigrationRecord:
    """A record read from its hash.

    Raises:
        CorruptStateError: the hash is not an aurum-otel record.
    """
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


def encode_record(change: Transition, version: int) -> dict[str, str]:
    """The hash fields a transition writes (checked to read back: never write what readers reject)."""
    record = {
        "phase": change.to_phase.value,
        "rollout": json.dumps(change.rollout.to_dict()),
        "updated_at": repr(change.at),
        "version": str(version),
        "actor": change.actor,
        "reason": change.reason,
        "transition_id": change.id,
    }
    decode_record(record, ())
    return record


def decode_history(name: str, items: Iterable[Any], location: str) -> tuple[Transition, ...]:
    """A migration's transitions, oldest first (unreadable entries are skipped)."""
    history = []
    for item in items:
        try:
            history.append(Transition.from_dict(name, json.loads(text(item))))
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.debug("phase store %s: skipped an unreadable history entry of %r", location, name)
    return tuple(history)

"""The phase store: where ``advance``, ``rollback`` and the controller write phases.

The default store is a JSON file (``$AURUM_STATE_DIR/migration_state.json``, default
``~/.aurum``), written atomically under an inter-process lock with mode 0600, holding each
migration's phase, rollout and the history of its transitions. Readers notice a change by a cheap
``stat`` and re-read the file only when it changed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aurum_otel._files import locked, move_aside, read_json, write_json_atomic
from aurum_otel.errors import CorruptStateError, StateError, TransitionConflictError
from aurum_otel.phase import Phase, Rollout

logger = logging.getLogger("aurum_otel.store")

STATE_FILE = "migration_state.json"
SCHEMA = 1
HISTORY_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a migration's phase or rollout, as written to the store."""

    name: str
    from_phase: Phase
    to_phase: Phase
    rollout: Rollout
    actor: str
    reason: str
    at: float  # Unix time of the change (wall clock: a record, not a latency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "from": self.from_phase.value,
            "to": self.to_phase.value,
            "rollout": self.rollout.to_dict(),
            "actor": self.actor,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Transition:
        return cls(
            name=name,
            from_phase=Phase(data["from"]),
            to_phase=Phase(data["to"]),
            rollout=Rollout.from_dict(data.get("rollout", {})),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            at=float(data.get("at", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """What the store holds for one migration."""

    phase: Phase = Phase.LEGACY
    rollout: Rollout = Rollout()
    updated_at: float = 0.0
    history: tuple[Transition, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything in the store at one moment; ``problem`` is set when it could not be read."""

    records: Mapping[str, MigrationRecord]
    problem: StateError | None = None

    def get(self, name: str) -> MigrationRecord | None:
        return self.records.get(name)


@runtime_checkable
class PhaseStore(Protocol):
    """Where phases live. Implementations: :class:`FileStore` (default) and the Redis store."""

    @property
    def location(self) -> str: ...

    def snapshot(self) -> Snapshot:
        """The current contents; cheap when nothing changed since the last call."""
        ...

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
        """Write a transition atomically; raise TransitionConflictError if ``expected`` (and
        ``expected_rollout``, when given) is not what the store holds."""
        ...


class FileStore:
    """A phase store in one JSON file, safe across processes (flock + atomic rename)."""

    def __init__(self, path: Path | str, *, history_limit: int = HISTORY_LIMIT) -> None:
        self.path = Path(path)
        self.history_limit = history_limit
        self._lock = threading.Lock()
        self._token: tuple[int, int, int] | None = None
        self._snapshot = Snapshot(records={})

    @classmethod
    def in_dir(cls, directory: Path | str) -> FileStore:
        return cls(Path(directory) / STATE_FILE)

    @property
    def location(self) -> str:
        return f"file://{self.path}"

    def snapshot(self) -> Snapshot:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            token = None
        except OSError as exc:
            return Snapshot({}, StateError(f"cannot stat {self.path}: {exc.strerror}"))
        else:
            token = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if token is None:
                self._token, self._snapshot = None, Snapshot({})
            elif token != self._token:
                self._snapshot = self._read()
                self._token = token
            return self._snapshot

    def _read(self) -> Snapshot:
        try:
            return Snapshot(_parse(self.path, read_json(self.path)))
        except CorruptStateError as exc:
            logger.error(
                "phase store %s is unreadable (%s); calls run on legacy unless the environment "
                "pins a phase; the next advance/rollback keeps the bad file aside",
                self.path,
                exc,
            )
            return Snapshot({}, exc)

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
        with locked(self.path):
            try:
                document = read_json(self.path) or {}
                migrations = dict(document.get("migrations", {}))
                raw = migrations.get(name)
                # Only this migration's record is checked and rebuilt: a write stays cheap as the
                # history grows (readers parse the whole file, once per change).
                if document.get("schema", SCHEMA) != SCHEMA:
                    raise ValueError(f"schema {document.get('schema')!r}, expected {SCHEMA}")
                current = _parse_current(raw) if raw else None
            except (CorruptStateError, TypeError, ValueError, AttributeError, KeyError) as exc:
                kept = move_aside(self.path)
                logger.warning(
                    "phase store %s was corrupt (%s); kept it at %s and started a new one",
                    self.path,
                    exc,
                    kept,
                )
                migrations, raw, current = {}, None, None
            phase = current.phase if current else Phase.LEGACY
            check_expected(name, phase, current.rollout if current else Rollout(), expected,
                           expected_rollout)
            change = Transition(
                name=name,
                from_phase=phase,
                to_phase=to_phase,
                rollout=rollout if rollout is not None else (current.rollout if current
                                                             else Rollout()),
                actor=actor,
                reason=reason,
                at=time.time(),
            )
            history = [*(raw.get("history", []) if raw else []), change.to_dict()]
            migrations[name] = {
                "phase": to_phase.value,
                "rollout": change.rollout.to_dict(),
                "updated_at": change.at,
                "history": history[-self.history_limit :],
            }
            write_json_atomic(self.path, {"schema": SCHEMA, "migrations": migrations})
        return change


def check_expected(name: str, phase: Phase, rollout: Rollout, expected: Phase | None,
                   expected_rollout: Rollout | None) -> None:
    """Raise :class:`TransitionConflictError` when the stored state is not the expected one."""
    if expected is not None and phase is not expected:
        raise TransitionConflictError(name, expected.value, phase.value)
    if expected_rollout is not None and rollout.percent != expected_rollout.percent:
        raise TransitionConflictError(
            name, f"{phase.value} at {expected_rollout.percent:g}%",
            f"{phase.value} at {rollout.percent:g}%",
        )


def _parse_current(raw: Mapping[str, Any]) -> MigrationRecord:
    if not isinstance(raw.get("history", []), list):
        raise ValueError("history is not a list")
    return MigrationRecord(phase=Phase(raw["phase"]), rollout=Rollout.from_dict(raw.get("rollout", {})))


def _parse(path: Path, document: Mapping[str, Any] | None) -> dict[str, MigrationRecord]:
    if not document:
        return {}
    try:
        if document.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"schema {document.get('schema')!r}, expected {SCHEMA}")
        records = {}
        for name, raw in dict(document.get("migrations", {})).items():
            records[name] = MigrationRecord(
                phase=Phase(raw["phase"]),
                rollout=Rollout.from_dict(raw.get("rollout", {})),
                updated_at=float(raw.get("updated_at", 0.0)),
                history=tuple(Transition.from_dict(name, item) for item in raw.get("history", [])),
            )
        return records
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStateError(
            f"{path} is not an aurum-otel state file ({type(exc).__name__}: {exc})", path=str(path)
        ) from None


def store_from_url(url: str | None, state_dir: Path) -> PhaseStore:
    """The store an ``AURUM_STATE_URL`` names (``file:///path``, ``redis://...``, ``openfeature:``)."""
    from aurum_otel.errors import ConfigurationError

    if not url:
        return FileStore.in_dir(state_dir)
    if url.startswith("file://"):
        target = Path(url[len("file://") :])
        return FileStore(target if target.suffix == ".json" else target / STATE_FILE)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from aurum_otel.redis_store import RedisStore
        except ImportError:
            raise ConfigurationError(
                "AURUM_STATE_URL", url.split("@")[-1],
                "a redis:// URL needs the redis extra: pip install 'aurum-otel[redis]'") from None
        return RedisStore.from_url(url)
    if url.startswith("openfeature:"):
        try:
            from aurum_otel.openfeature_source import OpenFeaturePhaseSource
        except ImportError:
            raise ConfigurationError(
                "AURUM_STATE_URL", url,
                "an openfeature: URL needs the openfeature extra: "
                "pip install 'aurum-otel[openfeature]'") from None
        return OpenFeaturePhaseSource.from_url(url, state_dir)
    raise ConfigurationError(
        "AURUM_STATE_URL", url.split("@")[-1],
        "file:///path/to/dir-or-file.json, redis://[:password@]host:port/db[?prefix=aurum] or "
        "openfeature:[//domain]")

"""The default phase store: two JSON files in ``$AURUM_STATE_DIR`` (default ``~/.aurum``).

``migration_state.json`` holds each migration's current record (phase, rollout, the id of the
transition that wrote it, the controller's watch state) and, under ``corrupt``, records that could
not be read, kept aside; ``migration_state.history.json`` holds the transitions. Readers notice a
change by a cheap ``stat`` and then parse only the small current file: the history is read when
someone looks at it. Writers hold an inter-process lock and replace each file atomically (0600).

A state file of the earlier layout (history inside each record) is read as it is and converted by
the next transition. A record that cannot be read affects only its own migration.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aurum_otel.errors import CorruptStateError, StateError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.base import PhaseStoreBase
from aurum_otel.stores.files import (
    check_trusted_dir,
    clean_stale_temps,
    locked,
    move_aside,
    read_json,
    write_json_atomic,
)
from aurum_otel.stores.model import (
    HISTORY_LIMIT,
    LazyHistory,
    MigrationRecord,
    Snapshot,
    Transition,
    WatchState,
    check_expected,
    new_transition_id,
    parse_record,
    record_to_dict,
)

logger = logging.getLogger("aurum_otel.store")

STATE_FILE = "migration_state.json"
SCHEMA = 1  # unchanged by moving the history out: older readers still read the current records

_Token = tuple[int, int, int]


def _token(path: Path) -> _Token | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class FileStore(PhaseStoreBase):
    """A phase store in local files, safe across processes (flock + atomic rename)."""

    def __init__(self, path: Path | str, *, history_limit: int = HISTORY_LIMIT) -> None:
        self.path = Path(path)
        self.history_path = self.path.with_name(f"{self.path.stem}.history.json")
        self.history_limit = history_limit
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._snapshot = Snapshot(records={})
        self._history_token: _Token | None = None
        self._history: dict[str, Any] = {}
        self._bad_history: list[Any] = []

    @classmethod
    def in_dir(cls, directory: Path | str) -> FileStore:
        return cls(Path(directory) / STATE_FILE)

    @property
    def location(self) -> str:
        return f"file://{self.path}"

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> Snapshot:
        try:
            check_trusted_dir(self.path.parent)
            token = _token(self.path)
        except StateError as exc:
            return Snapshot({}, exc)
        except OSError as exc:
            return Snapshot({}, StateError(f"cannot stat {self.path}: {exc.strerror}"))
        with self._lock:
            if token is None:
                self._token, self._snapshot = None, Snapshot({})
            elif token != self._token:
                self._snapshot = self._read()
                self._token = token
            return self._snapshot

    def _read(self) -> Snapshot:
        try:
            document = read_json(self.path) or {}
            migrations = _migrations(self.path, document)
        except CorruptStateError as exc:
            logger.error(
                "phase store %s is unreadable (%s); calls run on legacy unless the environment "
                "pins a phase; the next advance/rollback keeps the bad file aside", self.path, exc)
            return Snapshot({}, exc)
        records: dict[str, MigrationRecord] = {}
        corrupt: dict[str, str] = {}
        for name, raw in migrations.items():
            inline = raw.get("history") if isinstance(raw, dict) else None
            try:
                records[name] = parse_record(raw, self._lazy_history(name, inline))
            except ValueError as exc:
                corrupt[name] = f"the record of {name!r} in {self.path} is unreadable ({exc})"
                logger.error("%s; %r runs on legacy until its next transition", corrupt[name],
                             name)
        for name, kept in _kept_aside(document).items():
            if name not in records and name not in corrupt:
                corrupt[name] = (f"the record of {name!r} was unreadable and is kept aside in "
                                 f"{self.path} ({kept.get('error', '?')})")
        return Snapshot(records, None, corrupt)

    def _lazy_history(self, name: str, inline: Any) -> LazyHistory:
        if isinstance(inline, list):  # the earlier layout, until the next transition converts it
            return LazyHistory(lambda: _transitions(name, inline))
        return LazyHistory(lambda: self.history(name))

    def history(self, name: str) -> tuple[Transition, ...]:
        """``name``'s transitions, oldest first (unreadable entries are skipped and logged)."""
        try:
            token = _token(self.history_path)
            with self._lock:
                if token != self._history_token:
                    document = read_json(self.history_path) or {}
                    histories = document.get("history", {})
                    self._history = histories if isinstance(histories, dict) else {}
                    self._history_token = token
                entries = self._history.get(name, [])
        except (CorruptStateError, OSError) as exc:
            logger.error("the history file %s is unreadable (%s); the next transition keeps it "
                         "aside", self.history_path, exc)
            return ()
        return _transitions(name, entries if isinstance(entries, list) else [])

    def kept_aside(self) -> dict[str, dict[str, Any]]:
        """Records that were unreadable and were kept aside by a transition, by migration name.

        Each holds ``record`` (what was stored, as it was), ``error`` and ``at`` (when it was moved).
        """
        try:
            return _kept_aside(read_json(self.path) or {})
        except CorruptStateError:
            return {}

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
        check_trusted_dir(self.path.parent)
        with locked(self.path):
            document, histories = self._load_for_write()
            migrations: dict[str, Any] = document["migrations"]
            current = _current(migrations.get(name))
            phase = current.phase if current else Phase.LEGACY
            check_expected(name, phase, current.rollout if current else Rollout(), expected,
                           expected_rollout)
            change = Transition(
                name=name,
                from_phase=phase,
                to_phase=Phase.parse(to_phase),
                rollout=rollout if rollout is not None else (current.rollout if current
                                                             else Rollout()),
                actor=actor,
                reason=reason,
                at=time.time(),
                id=new_transition_id(),
            )
            record = MigrationRecord(change.to_phase, change.rollout, change.at,
                                     transition_id=change.id)
            written = record_to_dict(record)
            parse_record(written)  # never write what readers reject
            Transition.from_dict(name, change.to_dict())
            histories[name] = [*histories.get(name, []), change.to_dict()][-self.history_limit:]
            migrations[name] = written
            self._write(document, histories)
        return change

    def save_watch(self, name: str, watch: WatchState) -> bool:
        """Keep a controller's state of the current step; ``False`` when the step has changed."""
        check_trusted_dir(self.path.parent)
        with locked(self.path):
            document, histories = self._load_for_write()
            current = _current(document["migrations"].get(name))
            if current is None or current.transition_id != watch.transition_id:
                return False
            document["migrations"][name] = record_to_dict(
                MigrationRecord(current.phase, current.rollout, current.updated_at,
                                transition_id=current.transition_id, watch=watch))
            self._write(document, histories)
        return True

    def _load_for_write(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """Both files, cleaned: unreadable records and history entries kept aside, temp files of
        killed writers removed, the earlier layout converted."""
        for path in (self.path, self.history_path):
            for stale in clean_stale_temps(path):
                logger.warning("removed %s, left by a writer that was killed mid-write", stale)
        try:
            document = read_json(self.path) or {}
            migrations = dict(_migrations(self.path, document))
        except CorruptStateError as exc:
            kept = move_aside(self.path)
            logger.warning("phase store %s was corrupt (%s); kept it at %s and started a new one",
                           self.path, exc, kept)
            document, migrations = {}, {}
        try:
            history_document = read_json(self.history_path) or {}
            histories = history_document.get("history", {})
            if not isinstance(histories, dict):
                raise CorruptStateError(f"{self.history_path}: history is not a JSON object",
                                        path=str(self.history_path))
        except CorruptStateError as exc:
            kept = move_aside(self.history_path)
            logger.warning("history file %s was corrupt (%s); kept it at %s and started a new one",
                           self.history_path, exc, kept)
            history_document, histories = {}, {}
        aside = _kept_aside(document)
        bad_entries = list(history_document.get("corrupt", [])) if isinstance(
            history_document.get("corrupt"), list) else []
        now = time.time()
        for name, raw in list(migrations.items()):
            if isinstance(raw, dict) and isinstance(raw.get("history"), list):
                histories[name] = [*raw.pop("history"), *histories.get(name, [])]
            try:
                parse_record(raw)
            except ValueError as exc:
                logger.warning("phase store %s: the record of %r is unreadable (%s); kept it "
                               "aside under 'corrupt'", self.path, name, exc)
                aside[name] = {"record": raw, "error": str(exc), "at": now}
                del migrations[name]
        for name, entries in list(histories.items()):
            good = []
            for entry in entries if isinstance(entries, list) else [entries]:
                try:
                    Transition.from_dict(name, entry)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    bad_entries.append({"name": name, "entry": entry, "error": str(exc), "at": now})
                else:
                    good.append(entry)
            histories[name] = good
        document = {"schema": SCHEMA, "migrations": migrations}
        if aside:
            document["corrupt"] = aside
        self._bad_history = bad_entries
        return document, histories

    def _write(self, document: dict[str, Any], histories: dict[str, list[Any]]) -> None:
        # The history first: a crash between the two leaves an entry for a transition that did
        # not land (visible by its id), never a phase without its record.
        history_document: dict[str, Any] = {"schema": SCHEMA, "history": histories}
        if self._bad_history:
            history_document["corrupt"] = self._bad_history
        write_json_atomic(self.history_path, history_document)
        write_json_atomic(self.path, document)


def _migrations(path: Path, document: Mapping[str, Any]) -> Mapping[str, Any]:
    if document.get("schema", SCHEMA) != SCHEMA:
        raise CorruptStateError(
            f"{path} is not an aurum-otel state file (schema {document.get('schema')!r}, "
            f"expected {SCHEMA})", path=str(path))
    migrations = document.get("migrations", {})
    if not isinstance(migrations, dict):
        raise CorruptStateError(f"{path} is not an aurum-otel state file (migrations is not a "
                                "JSON object)", path=str(path))
    return migrations


def _kept_aside(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    aside = document.get("corrupt", {})
    return {str(k): v for k, v in aside.items() if isinstance(v, dict)} if isinstance(
        aside, dict) else {}


def _current(raw: Any) -> MigrationRecord | None:
    return parse_record(raw) if raw is not None else None


def _transitions(name: str, entries: list[Any]) -> tuple[Transition, ...]:
    parsed = []
    skipped = 0
    for entry in entries:
        try:
            parsed.append(Transition.from_dict(name, entry))
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped += 1
    if skipped:
        logger.warning("skipped %d unreadable history entries of %r (the next transition keeps "
                       "them aside)", skipped, name)
    return tuple(parsed)

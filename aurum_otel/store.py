"""The phase store: where ``advance``, ``rollback`` and the controller write phases.

The implementations live in :mod:`aurum_otel.stores`; this module keeps the import path users have.
"""

from __future__ import annotations

from aurum_otel.stores.base import PhaseSource, PhaseSourceBase, PhaseStore, PhaseStoreBase
from aurum_otel.stores.file import SCHEMA, STATE_FILE, FileStore
from aurum_otel.stores.model import (
    HISTORY_LIMIT,
    LazyHistory,
    MigrationRecord,
    Snapshot,
    Transition,
    WatchState,
    check_expected,
    new_transition_id,
)
from aurum_otel.stores.url import store_from_url

__all__ = [
    "HISTORY_LIMIT",
    "SCHEMA",
    "STATE_FILE",
    "FileStore",
    "LazyHistory",
    "MigrationRecord",
    "PhaseSource",
    "PhaseSourceBase",
    "PhaseStore",
    "PhaseStoreBase",
    "Snapshot",
    "Transition",
    "WatchState",
    "check_expected",
    "new_transition_id",
    "store_from_url",
]

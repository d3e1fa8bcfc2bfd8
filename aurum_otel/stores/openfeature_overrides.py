"""The one write the OpenFeature source accepts: a rollback, applied in this process as a local
override of the flag, optionally kept in an ``override_store`` so that a restart keeps it.

An override holds until the flag's value changes at the provider (or the operator clears it);
each one written to the override store is marked in its reason, which is how a restart finds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.base import PhaseStore
from aurum_otel.stores.model import MigrationRecord
from aurum_otel.stores.openfeature_flags import FlagValue

logger = logging.getLogger("aurum_otel.store")

OVERRIDE_MARK = "[openfeature override] "
"""Prefix of the reason of every override written to ``override_store`` (and how they are found)."""
CLEARED_MARK = "[openfeature override cleared] "
OVERRIDES_FILE = "openfeature_overrides.json"


class ProviderOverrideWarning(UserWarning):
    """A rollback was applied locally only: the flag at the OpenFeature provider still says otherwise."""


@dataclass(slots=True)
class Override:
    record: MigrationRecord
    baseline: FlagValue | None  # what the provider said when the override was made (None: not known yet)


def is_rollback(current: MigrationRecord, to_phase: Phase, rollout: Rollout) -> bool:
    """Whether going from ``current`` to ``to_phase``/``rollout`` serves simplified no more."""
    if to_phase.rank != current.phase.rank:
        return to_phase.rank < current.phase.rank
    if to_phase is Phase.HYBRID:
        return rollout.percent <= current.rollout.percent
    return True  # same phase, legacy or simplified: nothing is served more by simplified


def load_overrides(store: PhaseStore) -> dict[str, MigrationRecord]:
    """The overrides kept in ``store`` whose last transition is an override (not a clearing)."""
    snapshot = store.snapshot()
    if snapshot.problem is not None:
        logger.error("cannot read the local overrides from %s (%s)", store.location,
                     snapshot.problem)
        return {}
    found = {}
    for name, record in snapshot.records.items():
        last = record.history[-1] if record.history else None
        if last is not None and last.reason.startswith(OVERRIDE_MARK):
            found[name] = record
            logger.warning("migration %r keeps the local rollback to %s recorded in %s until "
                           "its OpenFeature flag changes", name, record.phase.value,
                           store.location)
    return found


def keep_override(store: PhaseStore | None, name: str, to_phase: Phase, rollout: Rollout, *,
                  actor: str, reason: str) -> str:
    """Write the override to ``store``; `` and in <location>`` when it was, else ``""``."""
    if store is None:
        return ""
    try:
        store.transition(name, to_phase, rollout, actor=actor, reason=OVERRIDE_MARK + reason)
    except Exception as exc:
        logger.error("could not keep the override of %r in %s (%s): it holds in this "
                     "process's memory only", name, store.location, exc)
        return ""
    return f" and in {store.location}"


def keep_cleared(store: PhaseStore | None, name: str, value: FlagValue | None, why: str) -> None:
    """Record in ``store`` that the override of ``name`` no longer holds (the flag's value)."""
    if store is None:
        return
    phase, rollout = value if value is not None else (Phase.LEGACY, Rollout())
    try:
        store.transition(name, phase, rollout, actor="aurum-otel", reason=CLEARED_MARK + why)
    except Exception as exc:
        logger.error("could not record in %s that the override of %r was dropped (%s); "
                     "a restart would restore it until the flag changes",
                     store.location, name, exc)

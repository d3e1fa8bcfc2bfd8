"""The phases a test runs in, and a phase store in memory that pins them.

``hybrid`` is the first step of a real rollout: legacy serves every call (the test's assertions
hold against legacy) and simplified runs as a shadow on every call (percent 0, compare 100).
``hybrid-simplified`` is the last step: simplified serves every call and legacy shadows it
(percent 100, compare 100).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum

from aurum_otel.errors import ConfigurationError
from aurum_otel.names import check_name
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.model import (
    MigrationRecord,
    Snapshot,
    Transition,
    check_expected,
    new_transition_id,
)


class RunPhase(StrEnum):
    """A phase a test can run in (the id it shows: ``test_x[aurum-hybrid]``)."""

    LEGACY = "legacy"
    """Legacy serves every call; nothing is shadowed."""
    HYBRID = "hybrid"
    """Legacy serves every call; simplified shadows every call, compared before it returns."""
    HYBRID_SIMPLIFIED = "hybrid-simplified"
    """Simplified serves every call; legacy shadows every call, compared before it returns."""
    SIMPLIFIED = "simplified"
    """Simplified serves every call; nothing is shadowed."""

    @property
    def phase(self) -> Phase:
        return Phase.HYBRID if self is RunPhase.HYBRID_SIMPLIFIED else Phase(self.value)

    @property
    def rollout(self) -> Rollout:
        percent = 100.0 if self is RunPhase.HYBRID_SIMPLIFIED else 0.0
        return Rollout(percent=percent, compare=100.0)

    @classmethod
    def parse(cls, value: object, *, variable: str) -> RunPhase:
        """Parse a phase name (case-insensitive), raising a ConfigurationError naming ``variable``."""
        if isinstance(value, RunPhase):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ConfigurationError(variable, value, ", ".join(p.value for p in cls)) from None


def parse_phases(text: str, *, variable: str = "--aurum-phases") -> tuple[RunPhase, ...]:
    """``"legacy, hybrid"`` as phases, in the order given, each once.

    Raises:
        ConfigurationError: a name is not a phase, or none is given.
    """
    phases: dict[RunPhase, None] = {}
    for part in text.split(","):
        if part.strip():
            phases[RunPhase.parse(part, variable=variable)] = None
    if not phases:
        raise ConfigurationError(variable, text, ", ".join(p.value for p in RunPhase))
    return tuple(phases)


def check_migrations(names: Iterable[object] | None, *, variable: str) -> frozenset[str] | None:
    """Validated migration names (``None``: every migration)."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    return frozenset(check_name(name, variable=variable) for name in names)


class PinnedStore:
    """A phase store in memory: every migration (or the ``migrations`` named) reads ``phase``.

    A transition written during the test (``advance`` in the code under test) is kept and wins
    over the pin for that migration, as it would in a real store. :meth:`pin` changes the pin.
    """

    location = "memory (aurum-otel test mode)"

    def __init__(self, phase: RunPhase, migrations: frozenset[str] | None = None) -> None:
        self._written: dict[str, MigrationRecord] = {}
        self.pin(phase, migrations)

    def pin(self, phase: RunPhase, migrations: frozenset[str] | None = None) -> None:
        self.phase, self.migrations = phase, migrations
        self._pinned = MigrationRecord(phase.phase, phase.rollout)

    def snapshot(self) -> Snapshot:
        return Snapshot(_Records(self._pinned, self.migrations, dict(self._written)))

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
        current = self.snapshot().get(name) or MigrationRecord()
        check_expected(name, current.phase, current.rollout, expected, expected_rollout)
        change = Transition(name, current.phase, Phase.parse(to_phase),
                            rollout if rollout is not None else current.rollout, actor, reason,
                            at=time.time(), id=new_transition_id())
        self._written[name] = MigrationRecord(change.to_phase, change.rollout, change.at,
                                              history=(change,), transition_id=change.id)
        return change


class _Records(Mapping[str, MigrationRecord]):
    """The records of a :class:`PinnedStore`: the pin for any name it covers, without listing
    names no one has asked for."""

    __slots__ = ("_migrations", "_pinned", "_written")

    def __init__(self, pinned: MigrationRecord, migrations: frozenset[str] | None,
                 written: dict[str, MigrationRecord]) -> None:
        self._pinned, self._migrations, self._written = pinned, migrations, written

    def __getitem__(self, name: str) -> MigrationRecord:
        record = self._written.get(name)
        if record is not None:
            return record
        if self._migrations is None or name in self._migrations:
            return self._pinned
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._written) | (self._migrations or set())))

    def __len__(self) -> int:
        return len(set(self._written) | (self._migrations or set()))

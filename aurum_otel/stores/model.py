"""What a phase store holds: transitions, per-migration records, snapshots (the protocols are in
:mod:`aurum_otel.stores.base`)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from aurum_otel.errors import StateError, TransitionConflictError
from aurum_otel.phase import Phase, Rollout

HISTORY_LIMIT = 10_000


def new_transition_id() -> str:
    """A unique id written with a transition, so that a retried write can tell whether it landed."""
    return uuid.uuid4().hex


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
    id: str = ""  # unique per transition (empty in records written before ids existed)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "at": self.at,
            "from": self.from_phase.value,
            "to": self.to_phase.value,
            "rollout": self.rollout.to_dict(),
            "actor": self.actor,
            "reason": self.reason,
        }
        if self.id:
            data["id"] = self.id
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Transition:
        at = float(data.get("at", 0.0))
        if not math.isfinite(at):
            raise ValueError(f"time {at!r} is not a finite number")
        return cls(
            name=name,
            from_phase=Phase(data["from"]),
            to_phase=Phase(data["to"]),
            rollout=Rollout.from_dict(data.get("rollout", {})),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            at=at,
            id=str(data.get("id", "")),
        )


@dataclass(frozen=True, slots=True)
class WatchState:
    """What a controller keeps in the store so that a restarted ``watch`` resumes its step.

    Attributes:
        transition_id: the transition that started the step this state belongs to.
        unhealthy_streak: consecutive unhealthy verdicts at this step.
    """

    transition_id: str
    unhealthy_streak: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"transition_id": self.transition_id, "unhealthy_streak": self.unhealthy_streak}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchState:
        streak = data.get("unhealthy_streak", 0)
        if isinstance(streak, bool) or not isinstance(streak, int) or streak < 0:
            raise ValueError(f"unhealthy_streak {streak!r} is not an integer >= 0")
        return cls(str(data.get("transition_id", "")), streak)


class LazyHistory(Sequence[Transition]):
    """A migration's transitions, read from the store only when someone looks at them.

    Reading the current phase must stay cheap however long the history is: a snapshot's records
    carry this instead of the parsed transitions.
    """

    __slots__ = ("_items", "_load")

    def __init__(self, load: Callable[[], tuple[Transition, ...]]) -> None:
        self._load: Callable[[], tuple[Transition, ...]] | None = load
        self._items: tuple[Transition, ...] = ()

    def _all(self) -> tuple[Transition, ...]:
        load = self._load
        if load is not None:
            self._items, self._load = load(), None
        return self._items

    @overload
    def __getitem__(self, index: int) -> Transition: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Transition]: ...
    def __getitem__(self, index: int | slice) -> Transition | Sequence[Transition]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Transition]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "LazyHistory(...)" if self._load is not None else f"LazyHistory({self._items!r})"


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """What the store holds for one migration."""

    phase: Phase = Phase.LEGACY
    rollout: Rollout = Rollout()
    updated_at: float = 0.0
    history: Sequence[Transition] = field(default=())
    transition_id: str = ""  # the id of the transition that wrote this record
    watch: WatchState | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything in the store at one moment.

    Attributes:
        records: the readable records, by migration name.
        problem: set when the store as a whole could not be read (every migration runs on legacy).
        corrupt: migrations whose own record is unreadable, with why (only they run on legacy).
    """

    records: Mapping[str, MigrationRecord]
    problem: StateError | None = None
    corrupt: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> MigrationRecord | None:
        return self.records.get(name)


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


def parse_record(raw: Any, history: Sequence[Transition] = ()) -> MigrationRecord:
    """One stored record (the file store's JSON form), validated; raises ValueError when bad."""
    try:
        if not isinstance(raw, Mapping):
            raise TypeError("not a JSON object")
        updated_at = float(raw.get("updated_at", 0.0))
        if not math.isfinite(updated_at):
            raise ValueError(f"updated_at {updated_at!r} is not finite")
        rollout = raw.get("rollout", {})
        if not isinstance(rollout, dict):
            raise TypeError("rollout is not a JSON object")
        watch = raw.get("watch")
        return MigrationRecord(
            phase=Phase(raw["phase"]),
            rollout=Rollout.from_dict(rollout),
            updated_at=updated_at,
            history=history,
            transition_id=str(raw.get("transition_id", "")),
            watch=WatchState.from_dict(watch) if isinstance(watch, Mapping) else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def record_to_dict(record: MigrationRecord) -> dict[str, Any]:
    data: dict[str, Any] = {
        "phase": record.phase.value,
        "rollout": record.rollout.to_dict(),
        "updated_at": record.updated_at,
    }
    if record.transition_id:
        data["transition_id"] = record.transition_id
    if record.watch is not None:
        data["watch"] = record.watch.to_dict()
    return data

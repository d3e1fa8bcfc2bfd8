"""Phases, implementations, outcomes and the rollout inside the hybrid phase."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aurum_otel.errors import ConfigurationError


class Phase(StrEnum):
    """Where a migration stands."""

    LEGACY = "legacy"
    """Every call is served by the legacy implementation."""
    HYBRID = "hybrid"
    """Both implementations are live: the rollout decides who serves and who shadows."""
    SIMPLIFIED = "simplified"
    """Every call is served by the simplified implementation."""

    @classmethod
    def parse(cls, value: object, *, variable: str = "phase") -> Phase:
        """Parse a phase name (case-insensitive), raising a ConfigurationError naming ``variable``."""
        if isinstance(value, Phase):
            return value
        text = str(value).strip().lower()
        try:
            return cls(text)
        except ValueError:
            raise ConfigurationError(variable, value, [p.value for p in cls]) from None

    @property
    def rank(self) -> int:
        """0 for legacy, 1 for hybrid, 2 for simplified."""
        return _ORDER.index(self)


_ORDER = (Phase.LEGACY, Phase.HYBRID, Phase.SIMPLIFIED)


class Implementation(StrEnum):
    """One side of a migration."""

    LEGACY = "legacy"
    """The implementation being migrated away from."""
    SIMPLIFIED = "simplified"
    """The implementation being migrated to."""

    @property
    def other(self) -> Implementation:
        return Implementation.SIMPLIFIED if self is Implementation.LEGACY else Implementation.LEGACY


class Role(StrEnum):
    """Why an implementation ran on a call."""

    AUTHORITATIVE = "authoritative"
    """Its result (or exception) is what the caller got."""
    SHADOW = "shadow"
    """It ran off the request path so its result could be compared; the caller never saw it."""


class Outcome(StrEnum):
    """How a routed call ended for the caller."""

    SUCCESS = "success"
    """The authoritative implementation returned."""
    ERROR = "error"
    """The caller got an exception."""
    FALLBACK = "fallback"
    """Simplified raised and legacy served the call instead (rollout ``fallback``)."""


class Comparison(StrEnum):
    """What a shadow comparison found."""

    MATCH = "match"
    """Both implementations agreed."""
    MISMATCH = "mismatch"
    """They disagreed (values, or one raised and the other did not)."""
    ERROR = "error"
    """The shadow could not be compared: its arguments could not be copied or the comparator raised."""
    TIMEOUT = "timeout"
    """The shadow did not finish before its deadline."""
    DROPPED = "dropped"
    """The shadow never ran: its queue or memory budget was full, or the process was shutting
    down (load shedding; the span-less reason is logged)."""
    IGNORED = "ignored"
    """They differed in a way an ``ignore=`` predicate accepts: counted apart, never a mismatch
    for health."""
    SKIPPED = "skipped"
    """The shadow was not run or not compared, for a reason that says nothing of either
    implementation: what it needed could not be copied, its result cannot be compared honestly,
    or its client was closed. The shadow span's ``aurum.migration.comparison.reason`` says which
    (a :class:`SkipReason`)."""


class SkipReason(StrEnum):
    """Why a shadow was ``skipped`` (or, for the shadow span, why it ended as it did)."""

    UNCOPYABLE_ARGUMENTS = "uncopyable_arguments"
    """The call's arguments could be neither pickled nor deep-copied (a lock, a socket)."""
    UNCOPYABLE_INSTANCE = "uncopyable_instance"
    """A method's ``self`` could not be copied, and a shadow never shares the caller's."""
    UNCOPYABLE_RESULT = "uncopyable_result"
    """The authoritative result could not be copied (a generator, an open file)."""
    INCOMPARABLE_RESULT = "incomparable_result"
    """The results cannot be compared honestly (an endless iterator)."""
    CLOSED = "closed"
    """The routed client was closed before or while the shadow ran."""
    DEADLINE = "deadline"
    """Counted ``timeout`` at the deadline (with ``comparison=timeout``)."""
    DEADLINE_BEFORE_START = "deadline_before_start"
    """Still queued at its deadline: never started (with ``comparison=timeout``)."""
    SHUTDOWN = "shutdown"
    """The process or the registry shut down first (with ``comparison=dropped``)."""
    SHADOW_RAISED = "shadow_raised"
    """The shadow raised a ``BaseException`` that is not an ``Exception`` (``SystemExit``)."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """How the hybrid phase splits and compares traffic.

    Attributes:
        percent: share of calls (0-100) served by simplified, sticky by routing key.
        compare: share of calls (0-100) on which the other implementation also runs as a shadow.
        fallback: serve legacy when simplified raises.
    """

    percent: float = 0.0
    compare: float = 100.0
    fallback: bool = False

    def __post_init__(self) -> None:
        for field in ("percent", "compare"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0.0 <= float(value) <= 100.0
            ):
                raise ConfigurationError(f"rollout.{field}", value, "a number from 0 to 100")

    def copy(self, **changes: Any) -> Rollout:
        """A new rollout with ``changes`` applied (rollouts are immutable)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, "compare": self.compare, "fallback": self.fallback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        return cls(
            percent=float(data.get("percent", 0.0)),
            compare=float(data.get("compare", 100.0)),
            fallback=bool(data.get("fallback", False)),
        )


@dataclass(frozen=True, slots=True)
class PhaseState:
    """A migration's phase and rollout as resolved from flags, store and defaults.

    Attributes:
        phase: the phase in force.
        rollout: the hybrid rollout (ignored outside hybrid).
        source: where the phase came from: ``kill-switch``, ``env``, ``store``, ``default`` or
            ``invalid`` (a bad value fell back to legacy).
        problem: what was wrong when ``source`` is ``invalid`` (the variable name, never a value).
        since: when the store's record was written (Unix time): the step's start, which tells
            a step from an earlier one at the same percent; 0 when the phase is not the store's.
    """

    phase: Phase = Phase.LEGACY
    rollout: Rollout = Rollout()
    source: str = "default"
    problem: str | None = None
    since: float = dataclasses.field(default=0.0, compare=False)


LEGACY_STATE = PhaseState()

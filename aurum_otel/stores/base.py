"""What a phase source and a phase store promise, and do-nothing bases to build one on.

A **source** is where a process reads phases: :meth:`~PhaseSource.snapshot`, plus
:meth:`~PhaseSource.add_listener` for sources that learn of changes (Redis notifications, OpenFeature
events) and :meth:`~PhaseSource.close` for those that hold threads or connections. A **store** is a
source that ``advance``/``rollback`` and the controller can also write to
(:meth:`~PhaseStore.transition`).

Write one by subclassing :class:`PhaseSourceBase` or :class:`PhaseStoreBase` (as with the
open-feature SDK's ``AbstractProvider``): the listener and lifecycle methods do nothing unless
overridden, so a source that is re-read by polling implements only ``location`` and ``snapshot``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.model import Snapshot, Transition

Listener = Callable[[str], None]
"""Called with a migration's name when the source learns that its record changed."""


@runtime_checkable
class PhaseSource(Protocol):
    """Where phases are read. Read-only: nothing is written through it."""

    @property
    def location(self) -> str:
        """How the source is named in messages (no secrets)."""
        ...

    def snapshot(self) -> Snapshot:
        """The current contents; cheap when nothing changed since the last call."""
        ...

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(name)`` when the source learns that ``name``'s record changed (a source
        that only polls never calls it: readers then re-read it every refresh interval)."""
        ...

    def close(self) -> None:
        """Release threads and connections; the source is not used afterwards."""
        ...


@runtime_checkable
class PhaseStore(PhaseSource, Protocol):
    """A source that is also written: implementations :class:`~aurum_otel.stores.file.FileStore`
    (the default) and :class:`~aurum_otel.stores.redis.RedisStore`."""

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


class PhaseSourceBase(abc.ABC):
    """A :class:`PhaseSource` whose listener and lifecycle methods do nothing."""

    @property
    @abc.abstractmethod
    def location(self) -> str: ...

    @abc.abstractmethod
    def snapshot(self) -> Snapshot: ...

    def add_listener(self, callback: Listener) -> None:  # noqa: B027 - deliberately empty
        """Nothing: this source never pushes changes (readers poll it)."""

    def close(self) -> None:  # noqa: B027 - deliberately empty
        """Nothing to release."""


class PhaseStoreBase(PhaseSourceBase):
    """A :class:`PhaseStore` whose listener and lifecycle methods do nothing."""

    @abc.abstractmethod
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
    ) -> Transition: ...

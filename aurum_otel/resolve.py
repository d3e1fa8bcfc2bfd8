"""Phase precedence: kill switch > operator pin (env) > phase store > default, cached.

:func:`precedence` is the rule itself, pure over its inputs (a migration's flags, the store or why
there is none); :class:`MigrationRuntime` caches its result per migration for the registry's
refresh interval, so the call path reads neither the environment nor a file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aurum_otel.errors import ConfigurationError, StateError
from aurum_otel.flags import FlagReader, GlobalFlags, MigrationFlags, monitoring_enabled
from aurum_otel.phase import Phase, PhaseState, Rollout
from aurum_otel.store import PhaseStore

logger = logging.getLogger("aurum_otel")

LogOnce = Callable[..., None]
"""``log(key, message, *args)``: log ``message`` once per ``key``."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A migration's phase state and monitoring switch, as the call path sees them."""

    state: PhaseState
    monitoring: bool

    @property
    def needs_shell(self) -> bool:
        """``False`` when monitoring is off and legacy serves every call: nothing to do."""
        return self.monitoring or self.state.phase is not Phase.LEGACY


StoreOrError = tuple[PhaseStore | None, ConfigurationError | StateError | None]


def precedence(name: str, flags: MigrationFlags, phase_store: Callable[[], StoreOrError], *,
               log_once: LogOnce, log_store_once: LogOnce | None = None) -> PhaseState:
    """``name``'s phase: kill switch, else the phase the environment pins, else the store's record,
    else legacy. A store that cannot be built or read never fails a call: legacy (or the pinned
    phase), tagged with the problem.

    ``phase_store()`` gives the store or why there is none (asked only past the kill switch).
    ``log_once`` logs this migration's problems; ``log_store_once`` the store's (shared by every
    migration; default ``log_once``).
    """
    if flags.kill_switch:
        return PhaseState(Phase.LEGACY, source="kill-switch")
    store, store_error = phase_store()
    if store is None:
        # A store that cannot even be built is a bad flag like any other: the call runs.
        variable = store_error.variable if isinstance(store_error, ConfigurationError) else "state"
        (log_store_once or log_once)(variable, "%s; migrations run on %s until it is fixed",
                                     store_error, "legacy (or the phase the environment pins)")
        if flags.phase is not None:
            return PhaseState(flags.phase, _override(Rollout(), flags), source="env",
                              problem=variable)
        return PhaseState(Phase.LEGACY, source="invalid", problem=variable)
    snapshot = store.snapshot()
    record = snapshot.get(name)
    rollout = _override(record.rollout if record else Rollout(), flags)
    corrupt = snapshot.corrupt.get(name)
    problem = snapshot.problem if snapshot.problem is not None else corrupt
    if flags.phase is not None:
        return PhaseState(flags.phase, rollout, source="env",
                          problem="state" if problem is not None else None)
    if problem is not None:
        log_once("state", "phase store unreadable (%s); %r runs on legacy", problem, name)
        return PhaseState(Phase.LEGACY, source="invalid", problem="state")
    if record is not None:
        return PhaseState(record.phase, rollout, source="store", since=record.updated_at)
    return PhaseState(Phase.LEGACY, rollout, source="default")


def _override(rollout: Rollout, flags: MigrationFlags) -> Rollout:
    changes = {
        field: getattr(flags, field)
        for field in ("percent", "compare", "fallback")
        if getattr(flags, field) is not None
    }
    return rollout.copy(**changes) if changes else rollout


class Resolver(Protocol):
    """What a :class:`MigrationRuntime` reads of its registry."""

    clock: Callable[[], float]
    refresh_interval: float
    global_flags: GlobalFlags

    def phase_store(self) -> StoreOrError: ...

    def log_once(self, key: str, message: str, *args: Any) -> None: ...


class MigrationRuntime:
    """One migration's cached view of its flags and store record."""

    def __init__(self, name: str, registry: Resolver) -> None:
        self.name = name
        self._registry = registry
        self._lock = threading.Lock()
        self._next_refresh = -1.0
        self._resolved = Resolved(PhaseState(), True)
        self.needs_shell = True
        self._logged: set[str] = set()
        self._flags = FlagReader(name)

    def resolved(self) -> Resolved:
        """The phase in force; re-resolved when the refresh interval has passed."""
        now = self._registry.clock()
        if now >= self._next_refresh:
            with self._lock:
                if now >= self._next_refresh:
                    self._resolved = self._resolve()
                    self.needs_shell = self._resolved.needs_shell
                    self._next_refresh = now + self._registry.refresh_interval
        return self._resolved

    def invalidate(self) -> None:
        self._next_refresh = -1.0

    def _resolve(self) -> Resolved:
        registry = self._registry
        try:
            flags = self._flags.read()
        except ConfigurationError as exc:
            self._log_once(exc.variable, "%s; migration %r runs on legacy until it is fixed", exc,
                           self.name)
            return Resolved(PhaseState(Phase.LEGACY, source="invalid", problem=exc.variable),
                            registry.global_flags.monitoring)
        state = precedence(self.name, flags, registry.phase_store, log_once=self._log_once,
                           log_store_once=registry.log_once)
        return Resolved(state, monitoring_enabled(flags, registry.global_flags))

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.error(message, *args)

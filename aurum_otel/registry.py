"""Process-wide state in one place, behind one lock, with a public reset.

The registry holds, per migration name, the resolved phase (refreshed from flags and the store at
most every ``refresh_interval`` seconds, so the call path reads neither the environment nor a file),
plus the store, the shadow executor and the default telemetry providers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aurum_otel.errors import ConfigurationError, StateError
from aurum_otel.flags import FlagReader, GlobalFlags, MigrationFlags, monitoring_enabled
from aurum_otel.phase import Phase, PhaseState, Rollout
from aurum_otel.shadow import ShadowExecutor
from aurum_otel.store import PhaseStore, store_from_url
from aurum_otel.telemetry import Instruments, instruments_for

if TYPE_CHECKING:
    from aurum_otel.health.inprocess import HealthReader

logger = logging.getLogger("aurum_otel")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A migration's phase state and monitoring switch, as the call path sees them."""

    state: PhaseState
    monitoring: bool

    @property
    def needs_shell(self) -> bool:
        """``False`` when monitoring is off and legacy serves every call: nothing to do."""
        return self.monitoring or self.state.phase is not Phase.LEGACY


class MigrationRuntime:
    """One migration's cached view of its flags and store record."""

    def __init__(self, name: str, registry: Registry) -> None:
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
        return Resolved(self._phase(flags), monitoring_enabled(flags, registry.global_flags))

    def _phase(self, flags: MigrationFlags) -> PhaseState:
        if flags.kill_switch:
            return PhaseState(Phase.LEGACY, source="kill-switch")
        store, error = self._registry.phase_store()
        if store is None:
            # A store that cannot even be built is a bad flag like any other: the call runs.
            variable = error.variable if isinstance(error, ConfigurationError) else "state"
            self._registry.log_once(variable, "%s; migrations run on %s until it is fixed", error,
                                    "legacy (or the phase the environment pins)")
            if flags.phase is not None:
                return PhaseState(flags.phase, _override(Rollout(), flags), source="env",
                                  problem=variable)
            return PhaseState(Phase.LEGACY, source="invalid", problem=variable)
        snapshot = store.snapshot()
        record = snapshot.get(self.name)
        rollout = _override(record.rollout if record else Rollout(), flags)
        corrupt = snapshot.corrupt.get(self.name)
        problem = snapshot.problem if snapshot.problem is not None else corrupt
        if flags.phase is not None:
            return PhaseState(flags.phase, rollout, source="env",
                              problem="state" if problem is not None else None)
        if problem is not None:
            self._log_once("state", "phase store unreadable (%s); %r runs on legacy",
                           problem, self.name)
            return PhaseState(Phase.LEGACY, source="invalid", problem="state")
        if record is not None:
            return PhaseState(record.phase, rollout, source="store")
        return PhaseState(Phase.LEGACY, rollout, source="default")

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.error(message, *args)


def _override(rollout: Rollout, flags: MigrationFlags) -> Rollout:
    changes = {
        field: getattr(flags, field)
        for field in ("percent", "compare", "fallback")
        if getattr(flags, field) is not None
    }
    return rollout.copy(**changes) if changes else rollout


class Registry:
    """Global state of aurum-otel in this process (see :func:`get_registry`)."""

    def __init__(
        self,
        *,
        store: PhaseStore | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        refresh_interval: float | None = None,
        health_reader: HealthReader | None = None,
    ) -> None:
        self._lock = threading.RLock()
        # A bad global value takes only its own default (logged once); the others keep theirs.
        self.global_flags = GlobalFlags.from_env(strict=False)
        self._store = store
        self._store_error: ConfigurationError | StateError | None = None
        self._logged: set[str] = set()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.clock = clock
        self.rand = rand
        self.refresh_interval = (
            refresh_interval if refresh_interval is not None else self.global_flags.refresh_interval
        )
        self.health_reader = health_reader
        self._migrations: dict[str, MigrationRuntime] = {}
        self._shadows: ShadowExecutor | None = None
        if store is not None:
            self._listen(store)

    @property
    def store(self) -> PhaseStore:
        """The phase store ``AURUM_STATE_URL`` names.

        Raises:
            ConfigurationError: the URL is bad (what the CLI reports; the call path never raises).
        """
        store, error = self.phase_store()
        if store is None:
            assert error is not None
            raise error
        return store

    def phase_store(self) -> tuple[PhaseStore | None, ConfigurationError | StateError | None]:
        """The store, or why there is none (built once; a bad URL is not tried again)."""
        if self._store is None and self._store_error is None:
            with self._lock:
                if self._store is None and self._store_error is None:
                    try:
                        store = store_from_url(self.global_flags.state_url,
                                               self.global_flags.state_dir)
                    except (ConfigurationError, StateError) as exc:
                        self._store_error = exc
                    else:
                        self._listen(store)
                        self._store = store
        return self._store, self._store_error

    def log_once(self, key: str, message: str, *args: Any) -> None:
        """Log an error once per process (a bad setting is not repeated on every refresh)."""
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        logger.error(message, *args)

    def _listen(self, store: PhaseStore) -> None:
        """Re-resolve a migration at once when a store that pushes changes reports one."""
        add_listener = getattr(store, "add_listener", None)
        if callable(add_listener):
            registry = weakref.ref(self)

            def on_change(name: str) -> None:
                live = registry()
                if live is not None:
                    live.invalidate(name)

            add_listener(on_change)

    def migration(self, name: str) -> MigrationRuntime:
        runtime = self._migrations.get(name)
        if runtime is None:
            with self._lock:
                runtime = self._migrations.setdefault(name, MigrationRuntime(name, self))
        return runtime

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._migrations)

    def instruments(self, tracer_provider: Any = None, meter_provider: Any = None) -> Instruments:
        return instruments_for(tracer_provider or self.tracer_provider,
                               meter_provider or self.meter_provider)

    @property
    def shadows(self) -> ShadowExecutor:
        if self._shadows is None:
            with self._lock:
                if self._shadows is None:
                    self._shadows = ShadowExecutor()
        return self._shadows

    def invalidate(self, name: str | None = None) -> None:
        """Make the next call re-resolve phases now (after a transition in this process)."""
        with self._lock:
            targets = [self._migrations[name]] if name in self._migrations else (
                list(self._migrations.values()) if name is None else []
            )
        for runtime in targets:
            runtime.invalidate()

    def close(self) -> None:
        if self._shadows is not None:
            self._shadows.shutdown()


_registry_lock = threading.Lock()
_registry: Registry | None = None
_generation = 0


def get_registry() -> Registry:
    """The process's registry, created on first use."""
    global _registry
    registry = _registry
    if registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
            registry = _registry
    return registry


def generation() -> int:
    """Bumped by every :func:`configure`/:func:`reset`, so cached lookups know to refresh."""
    return _generation


_CARRIED_OVER = ("health_reader", "tracer_provider", "meter_provider")


def configure(**options: Any) -> Registry:
    """Replace the registry with one built from ``options`` (see :class:`Registry`); the health
    reader and providers of the registry it replaces are kept unless ``options`` names them.

    Typical use: ``configure(store=FileStore(path), tracer_provider=tp, meter_provider=mp)``.
    """
    global _registry, _generation
    with _registry_lock:
        old = _registry
        if old is not None:
            # What setup_telemetry() attached stays attached: configure() and setup_telemetry()
            # work in either order; only reset() forgets it.
            for kept in _CARRIED_OVER:
                if kept not in options and getattr(old, kept) is not None:
                    options[kept] = getattr(old, kept)
        _registry = Registry(**options)
        _generation += 1
        new = _registry
    if old is not None:
        old.close()
    return new


def reset() -> None:
    """Forget all process-wide state (phases cached, store, providers, shadow workers)."""
    global _registry, _generation
    with _registry_lock:
        old, _registry = _registry, None
        _generation += 1
    if old is not None:
        old.close()

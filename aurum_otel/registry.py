"""Process-wide state in one place, behind one lock, with a public reset.

The registry is the one owner of what a process keeps: per migration name, the resolved phase
(:mod:`aurum_otel.resolve`, refreshed at most every ``refresh_interval`` seconds), the store, the
shadow executor, the default telemetry providers, the instruments and their counts, the
metrics-file writers, the in-process health reader and the mismatch log. :func:`configure`
replaces the registry and carries the telemetry state over (so it and ``setup_telemetry()`` work in
either order); :func:`reset` forgets all of it.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurum_otel.errors import AurumOtelError, ConfigurationError, StateError
from aurum_otel.flags import GlobalFlags
from aurum_otel.guide.metrics_file import MetricsFileWriter, Steps
from aurum_otel.health.file import FILE_NAME, step_label
from aurum_otel.mismatch_log import MismatchLog
from aurum_otel.phase import Phase
from aurum_otel.resolve import MigrationRuntime, Resolved
from aurum_otel.router import secret_of
from aurum_otel.shadow import ShadowExecutor
from aurum_otel.store import PhaseStore, store_from_url
from aurum_otel.telemetry.aggregate import Aggregator
from aurum_otel.telemetry.instruments import Instruments, InstrumentSet, monitoring_explicitly_on

if TYPE_CHECKING:
    from aurum_otel.health.inprocess import HealthReader

__all__ = ["MigrationRuntime", "Registry", "Resolved", "configure", "current_aggregator",
           "generation", "get_registry", "reset"]

logger = logging.getLogger("aurum_otel")


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
        self._owns_store = False  # a store passed in stays its caller's to close
        self._store_error: ConfigurationError | StateError | None = None
        self._logged: set[str] = set()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.clock = clock
        self.rand = rand
        # Keys the hashed feature_flag.context.id of routed calls (AURUM_CONTEXT_ID_SECRET).
        secret = self.global_flags.context_id_secret
        self.context_secret = secret_of(None if secret is None else secret.get_secret_value())
        self.refresh_interval = (
            refresh_interval if refresh_interval is not None else self.global_flags.refresh_interval
        )
        self.health_reader = health_reader
        self._migrations: dict[str, MigrationRuntime] = {}
        self._shadows: ShadowExecutor | None = None
        self._instruments = InstrumentSet()
        self._writers: dict[Aggregator, MetricsFileWriter] = {}
        # The shadow runs log through this one log (owned here: reset() clears it).
        self.mismatch_log = MismatchLog()
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
                        self._owns_store = True
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
        """The instruments of these providers (default: the registry's; ``None``: the globals)."""
        return self.instruments_of(tracer_provider or self.tracer_provider,
                                   meter_provider or self.meter_provider)

    def instruments_of(self, tracer_provider: Any, meter_provider: Any) -> Instruments:
        """The instruments of exactly this provider pair (``None``: the global provider)."""
        found, created = self._instruments.get(tracer_provider, meter_provider)
        if found.rollouts is None:
            found.rollouts = self.rollout_percents
        if created and monitoring_explicitly_on():
            self.metrics_writer(found.aggregator, start=True)  # the guide's monitoring flag
        return found

    def metrics_writer(self, aggregator: Aggregator, *, start: bool = False) -> MetricsFileWriter:
        """The one metrics-file writer of ``aggregator`` (made on first use; started if ``start``).

        One writer per aggregator, so that the lazy writer of the guide's monitoring flag and the
        one ``setup_telemetry()`` asks for never both add the same counts to the file.
        """
        with self._lock:
            writer = self._writers.get(aggregator)
            if writer is None:
                writer = self._writers[aggregator] = MetricsFileWriter(
                    aggregator=aggregator, phases=self.phases)
        return writer.start() if start else writer

    @property
    def metrics_file_path(self) -> Path:
        """Where the metrics file is by default (``$AURUM_STATE_DIR/migration_metrics.json``)."""
        return self.global_flags.state_dir / FILE_NAME

    def phases(self, names: set[str]) -> dict[str, Steps]:
        """``name -> (phase, step label, step start)`` of ``names`` and every known migration."""
        out: dict[str, Steps] = {}
        for name in {*names, *self.names()}:
            state = self.migration(name).resolved().state
            step = self.step_of(name)
            out[name] = (state.phase.value, *step) if step else state.phase.value
        return out

    def rollout_percents(self) -> dict[str, float]:
        """``name -> configured share (0-100) served by simplified`` of every known migration."""
        out: dict[str, float] = {}
        for name in self.names():
            state = self.migration(name).resolved().state
            out[name] = (state.rollout.percent if state.phase is Phase.HYBRID else
                         100.0 if state.phase is Phase.SIMPLIFIED else 0.0)
        return out

    def step_of(self, name: str) -> tuple[str, float] | None:
        """``name``'s step label and start (Unix time), from the resolved phase and the store."""
        try:
            state = self.migration(name).resolved().state
            record = self.store.snapshot().get(name)
        except AurumOtelError:
            return None
        if record is not None and state.source == "store":
            # The store's own record, fresher than the cached resolution.
            return step_label(record.phase, record.rollout), record.updated_at
        return step_label(state.phase, state.rollout), 0.0

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

    def _adopt_telemetry(self, old: Registry) -> None:
        """Take over ``old``'s instruments (their counts), writers and mismatch log."""
        with old._lock:
            self._instruments, old._instruments = old._instruments, InstrumentSet()
            self._writers, old._writers = old._writers, {}
        for writer in self._writers.values():
            writer.phases = self.phases
        self.mismatch_log = old.mismatch_log

    def close(self) -> None:
        """Stop what this registry owns: shadow workers, metrics-file writers (flushed), and the
        store it built from ``AURUM_STATE_URL`` (a Redis reader thread)."""
        if self._shadows is not None:
            self._shadows.shutdown()
        if self._owns_store and self._store is not None:
            try:
                self._store.close()
            except Exception:
                logger.warning("closing the phase store failed", exc_info=True)
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.stop()


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
        new = Registry(**options)
        if old is not None:
            new._adopt_telemetry(old)
        _registry = new
        _generation += 1
    if old is not None:
        old.close()
    return new


def reset() -> None:
    """Forget all process-wide state: phases cached, store, providers, shadow workers,
    instruments and their counts, metrics-file writers (flushed and stopped), the health reader
    and the mismatch log's memory."""
    global _registry, _generation
    with _registry_lock:
        old, _registry = _registry, None
        _generation += 1
    if old is not None:
        old.close()
        old.mismatch_log.flush()  # lines held back are summarised, not lost
        old.mismatch_log.reset()


def current_aggregator() -> Aggregator:
    """The aggregator of the registry of the moment's default instruments (a reader that must
    follow ``configure()`` and ``reset()``, as ``setup_telemetry()``'s health reader does)."""
    return get_registry().instruments().aggregator


def _flush_at_exit() -> None:
    registry = _registry
    if registry is not None:
        registry.mismatch_log.flush()


atexit.register(_flush_at_exit)

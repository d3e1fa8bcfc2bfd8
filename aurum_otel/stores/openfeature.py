"""Phases from an OpenFeature provider (flagd, LaunchDarkly, Unleash, ... via openfeature-sdk).

:class:`OpenFeaturePhaseSource` is a read-only :class:`~aurum_otel.stores.base.PhaseSource`: the
provider decides the phases. It plugs into the registry like a store
(``configure(store=OpenFeaturePhaseSource())``, or ``AURUM_STATE_URL=openfeature:``), and its
:meth:`~OpenFeaturePhaseSource.snapshot` evaluates, for each migration the registry asks about,
these flags through an OpenFeature client (:mod:`.openfeature_flags`):

==================================  ========  =====================================================
flag (default key)                  type      meaning
==================================  ========  =====================================================
``aurum.migration.<name>.phase``     string    ``legacy`` | ``hybrid`` | ``simplified``
``aurum.migration.<name>.percent``   number    optional: hybrid share served by simplified (0-100)
``aurum.migration.<name>.compare``   number    optional: hybrid share shadow-compared (0-100)
``aurum.migration.<name>.fallback``  boolean   optional: serve legacy when simplified raises
==================================  ========  =====================================================

A migration whose phase flag does not exist has no record (it runs on legacy, or on what the
environment pins). A phase flag with an unknown value runs on legacy and is logged once. When the
provider cannot answer, the last value it gave is kept.

It refuses writes, with one exception (:mod:`.openfeature_overrides`): :meth:`transition` accepts
**rollbacks**, which take effect in this process at once as a local override (kept in memory, and
in ``override_store`` when one is given, so that a restart keeps it), and a warning says plainly
that the flag must also be changed at the provider: other processes follow the flag, and this one
follows it again as soon as the flag's value changes (or :meth:`clear_override` is called). Any
other transition raises a :class:`~aurum_otel.errors.StateError` telling the user to change the
flag at their provider.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from aurum_otel import semconv
from aurum_otel.errors import ConfigurationError, StateError, TransitionConflictError
from aurum_otel.phase import Phase, Rollout
from aurum_otel.stores.base import Listener, PhaseSourceBase, PhaseStore
from aurum_otel.stores.file import FileStore
from aurum_otel.stores.model import MigrationRecord, Snapshot, Transition
from aurum_otel.stores.openfeature_flags import FlagEvaluator, FlagValue, derive
from aurum_otel.stores.openfeature_overrides import (
    OVERRIDE_MARK,
    OVERRIDES_FILE,
    Override,
    ProviderOverrideWarning,
    is_rollback,
    keep_cleared,
    keep_override,
    load_overrides,
)

logger = logging.getLogger("aurum_otel.store")

__all__ = ["OVERRIDES_FILE", "OVERRIDE_MARK", "OpenFeaturePhaseSource", "ProviderOverrideWarning"]

DEFAULT_FLAG_KEY_TEMPLATE = semconv.FF_KEY
URL_FORM = "openfeature: or openfeature://DOMAIN, optionally ?flag_key_template=aurum.migration.{name}.phase"
_HISTORY_LIMIT = 1_000


@dataclass(slots=True)
class _Seen:
    value: FlagValue | None
    since: float
    history: list[Transition] = field(default_factory=list)


class OpenFeaturePhaseSource(PhaseSourceBase):
    """A phase source whose phases come from OpenFeature flags (see the module's documentation).

    Args:
        client: the OpenFeature client to evaluate with (default: ``openfeature.api.get_client()``,
            i.e. the application's default provider).
        flag_key_template: key of the phase flag; ``{name}`` is the migration's name.
        percent_key_template, compare_key_template, fallback_key_template: keys of the optional
            rollout flags (default: the phase key with ``.phase`` replaced by ``.percent``,
            ``.compare``, ``.fallback``; ``""`` to not evaluate one).
        names: migrations to list when the snapshot is iterated (those asked for are added).
        override_store: where local rollback overrides are also written (e.g. a
            :class:`~aurum_otel.stores.file.FileStore` of its own), and read back on start.
        context: evaluation context for targeting; the attribute ``migration`` (the name) is added.
    """

    def __init__(
        self,
        client: OpenFeatureClient | None = None,
        flag_key_template: str = DEFAULT_FLAG_KEY_TEMPLATE,
        *,
        percent_key_template: str | None = None,
        compare_key_template: str | None = None,
        fallback_key_template: str | None = None,
        names: Iterable[str] = (),
        override_store: PhaseStore | None = None,
        context: EvaluationContext | None = None,
    ) -> None:
        if "{name}" not in flag_key_template:
            raise ConfigurationError("flag_key_template", flag_key_template,
                                     "a key containing {name}, e.g. aurum.migration.{name}.phase")
        self._client = client if client is not None else api.get_client()
        self.flag_key_template = flag_key_template
        self.percent_key_template = derive(flag_key_template, percent_key_template, "percent")
        self.compare_key_template = derive(flag_key_template, compare_key_template, "compare")
        self.fallback_key_template = derive(flag_key_template, fallback_key_template, "fallback")
        self.override_store = override_store
        self._lock = threading.RLock()
        self._names: dict[str, None] = dict.fromkeys(names)
        self._overrides: dict[str, Override] = {}
        self._seen: dict[str, _Seen] = {}
        self._listeners: list[Listener] = []
        self._handler_added = False
        self._flags = FlagEvaluator(
            self._client,
            (flag_key_template, self.percent_key_template, self.compare_key_template,
             self.fallback_key_template),
            context or EvaluationContext(),
            self._last_known,
        )
        if override_store is not None:
            for name, record in load_overrides(override_store).items():
                self._overrides[name] = Override(record, None)
                self._names.setdefault(name, None)

    @classmethod
    def from_url(cls, url: str, state_dir: Path | str | None = None) -> OpenFeaturePhaseSource:
        """The source ``AURUM_STATE_URL=openfeature:[//DOMAIN][?flag_key_template=...]`` names.

        Flags are evaluated with ``openfeature.api.get_client(DOMAIN)`` (the default provider
        without a domain): the application sets its provider with ``openfeature.api.set_provider``.
        With ``state_dir``, local rollback overrides are also kept in
        ``<state_dir>/openfeature_overrides.json``.
        """
        parts = urlsplit(url)
        if parts.scheme != "openfeature":
            raise ConfigurationError("AURUM_STATE_URL", url, URL_FORM)
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"flag_key_template"}
        if unknown or parts.path not in ("", "/"):
            raise ConfigurationError("AURUM_STATE_URL", url, URL_FORM)
        override_store = (FileStore(Path(state_dir) / OVERRIDES_FILE) if state_dir is not None
                          else None)
        return cls(api.get_client(parts.netloc or None),
                   query.get("flag_key_template", DEFAULT_FLAG_KEY_TEMPLATE),
                   override_store=override_store)

    # ------------------------------------------------------------------ PhaseSource

    @property
    def location(self) -> str:
        domain = self._client.domain or "default"
        try:
            provider = self._client.provider.get_metadata().name
        except Exception:
            provider = "unknown provider"
        return f"openfeature://{domain} ({provider}, flag {self.flag_key_template})"

    def snapshot(self) -> Snapshot:
        """A view whose records are evaluated (once per snapshot) for the migrations looked up."""
        problem = None
        status = self._client.get_provider_status()
        if status not in (ProviderStatus.READY, ProviderStatus.STALE) and not self._flags.answered:
            problem = StateError(
                f"the OpenFeature provider of {self.location} is {status.value}: calls run on "
                "legacy until it is ready; check the provider's configuration and that "
                "openfeature.api.set_provider() was called", path=self.location)
        return Snapshot(_FlagRecords(self), problem)

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(name)`` when the provider reports that a migration's flags changed."""
        with self._lock:
            self._listeners.append(callback)
            if not self._handler_added:
                self._client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
                                         self._on_configuration_changed)
                self._handler_added = True

    # ------------------------------------------------------------------ the one write: a rollback

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
        """Refuse a write, unless it is a rollback: that is applied locally at once.

        Raises:
            TransitionConflictError: ``expected`` is given and the phase in force is another.
            StateError: the transition is not a rollback (change the flag at the provider).
        """
        to_phase = Phase.parse(to_phase)
        with self._lock:
            current = self.record(name) or MigrationRecord()
            if expected is not None and current.phase is not expected:
                raise TransitionConflictError(name, expected.value, current.phase.value)
            new_rollout = rollout if rollout is not None else current.rollout
            key = self.flag_key(name)
            if not is_rollback(current, to_phase, new_rollout):
                raise StateError(
                    f"migration {name!r} takes its phase from the OpenFeature flag {key!r} "
                    f"({self.location}): to move it from {current.phase.value} to "
                    f"{to_phase.value}, change that flag (and {self._rollout_keys(name)}) at your "
                    "feature-flag provider; aurum-otel applies only rollbacks locally",
                    path=self.location,
                )
            change = Transition(name=name, from_phase=current.phase, to_phase=to_phase,
                                rollout=new_rollout, actor=actor, reason=reason, at=time.time())
            seen = self._seen.setdefault(name, _Seen(None, change.at))
            seen.history = [*seen.history, change][-_HISTORY_LIMIT:]
            baseline = self._flags.evaluate(name)
            self._overrides[name] = Override(
                MigrationRecord(to_phase, new_rollout, change.at, tuple(seen.history)), baseline)
        persisted = keep_override(self.override_store, name, to_phase, new_rollout, actor=actor,
                                  reason=reason)
        flag_says = baseline[0].value if baseline else "nothing (the flag is missing)"
        message = (
            f"rolled {name!r} back to {to_phase.value} in this process only{persisted}: the "
            f"OpenFeature flag {key!r} still says {flag_says}. Change the flag at your provider "
            "too: other processes follow the flag, and this one follows it again as soon as the "
            "flag's value changes"
        )
        logger.warning("%s", message)
        warnings.warn(message, ProviderOverrideWarning, stacklevel=2)
        self._notify(name)
        return change

    def overrides(self) -> dict[str, MigrationRecord]:
        """The local rollback overrides in force, by migration."""
        with self._lock:
            return {name: override.record for name, override in self._overrides.items()}

    def clear_override(self, name: str) -> bool:
        """Follow the flag again for ``name``; False if there was no override."""
        with self._lock:
            if name not in self._overrides:
                return False
            self._drop_override(name, self._flags.evaluate(name), reason="cleared by the operator")
        self._notify(name)
        return True

    # ------------------------------------------------------------------ public helpers

    def flag_key(self, name: str) -> str:
        """The phase flag's key for migration ``name``."""
        return self.flag_key_template.format(name=name)

    def record(self, name: str) -> MigrationRecord | None:
        """The record in force for ``name``: the local override if any, else the flags' values."""
        with self._lock:
            self._names.setdefault(name, None)
        value = self._flags.evaluate(name)
        with self._lock:
            now = time.time()
            seen = self._seen.get(name)
            if seen is None:
                seen = self._seen[name] = _Seen(value, now)
            elif seen.value != value:
                seen.value, seen.since = value, now
            override = self._overrides.get(name)
            if override is not None:
                if override.baseline is None:
                    override.baseline = value
                elif value != override.baseline:
                    self._drop_override(name, value)
                    override = None
            if override is not None:
                return override.record
            if value is None:
                return None
            return MigrationRecord(value[0], value[1], seen.since, tuple(seen.history))

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    # ------------------------------------------------------------------ internals

    def _last_known(self, name: str) -> FlagValue | None:
        with self._lock:
            seen = self._seen.get(name)
        return seen.value if seen is not None else None

    def _drop_override(self, name: str, value: FlagValue | None, *,
                       reason: str | None = None) -> None:
        # Called with the lock held.
        self._overrides.pop(name, None)
        now_says = value[0].value if value else "nothing (the flag is missing)"
        why = reason or f"the OpenFeature flag {self.flag_key(name)!r} changed (now {now_says})"
        logger.warning("the local rollback override of %r is dropped: %s; it follows the flag "
                       "again", name, why)
        keep_cleared(self.override_store, name, value, why)

    def _rollout_keys(self, name: str) -> str:
        keys = [t.format(name=name) for t in (self.percent_key_template,
                                                self.compare_key_template) if t]
        return " / ".join(repr(k) for k in keys) or "the rollout flags"

    def _on_configuration_changed(self, details: EventDetails) -> None:
        changed = details.flags_changed
        if changed is None:
            names = self.names()
        else:
            names = list(dict.fromkeys(
                found.group("name") for key in changed for pattern in self._flags.key_patterns
                if (found := pattern.fullmatch(key))))
        for name in names:
            self._notify(name)

    def _notify(self, name: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(name)
            except Exception:
                logger.exception("phase source listener %r failed", callback)

    def __repr__(self) -> str:
        return f"OpenFeaturePhaseSource({self.location!r})"


class _FlagRecords(Mapping[str, MigrationRecord]):
    """The records of one snapshot: evaluated on first lookup of each name, then kept."""

    def __init__(self, source: OpenFeaturePhaseSource) -> None:
        self._source = source
        self._cache: dict[str, MigrationRecord | None] = {}

    def _lookup(self, name: str) -> MigrationRecord | None:
        if name not in self._cache:
            self._cache[name] = self._source.record(name)
        return self._cache[name]

    def __getitem__(self, name: str) -> MigrationRecord:
        record = self._lookup(name)
        if record is None:
            raise KeyError(name)
        return record

    def __iter__(self) -> Iterator[str]:
        return iter([name for name in self._source.names() if self._lookup(name) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"_FlagRecords({dict(self)!r})"

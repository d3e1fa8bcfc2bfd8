"""The Aurum migration guide's API, under the guide's names, on top of aurum-otel.

The guide's snippets run as written with ``from aurum_otel import ...``. Where the guide's original
code kept few of its promises (hybrid never split, the phase died with the process), these keep
them: phases live in the phase store, hybrid splits and compares, health is measured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aurum_otel.control import Controller
from aurum_otel.errors import ConfigurationError, CorruptStateError
from aurum_otel.guide.file_source import FileHealthSource, read_metrics_file, section_name
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.stats import HealthSource
from aurum_otel.health.verdict import Status
from aurum_otel.phase import Implementation, Phase
from aurum_otel.registry import get_registry

logger = logging.getLogger("aurum_otel")

GUIDE_COMPONENTS = ("settings", "database")
_ALIASES = {"db": "database", "settings_migration": "settings", "database_migration": "database"}


def _component(component: str) -> str:
    name = _ALIASES.get(component, component)
    if not isinstance(name, str) or not name:
        raise ConfigurationError("component", component, "settings, database or a migration name")
    return name


def advance_migration_phase(component: str, phase: str | Phase) -> bool:
    """Move ``component`` (``settings``, ``database`` or any migration) to ``phase``.

    ``hybrid`` starts at the first hybrid step of the default plan (a pure shadow run: percent 0,
    compare 100); ``aurum-migrate advance`` walks the rest. Returns ``True`` once written.

    Raises:
        ConfigurationError: ``phase`` is not legacy, hybrid or simplified.
    """
    target = Phase.parse(phase, variable="phase")
    Controller(_component(component), actor="migration-guide-api").advance(
        target, reason=f"advance_migration_phase({component!r}, {target.value!r})"
    )
    return True


def rollback_migration_phase(component: str) -> bool:
    """Roll ``component`` back to legacy. Returns ``True`` once written."""
    Controller(_component(component), actor="migration-guide-api").rollback(
        to_legacy=True, reason=f"rollback_migration_phase({component!r})"
    )
    return True


def advance_db_migration_phase(phase: str | Phase) -> bool:
    """The database migration's :func:`advance_migration_phase`."""
    return advance_migration_phase("database", phase)


def rollback_db_migration_phase() -> bool:
    """Roll the database migration back to legacy."""
    return rollback_migration_phase("database")


def _default_source() -> HealthSource:
    reader = get_registry().health_reader
    return reader if reader is not None else FileHealthSource()


def validate_migration_health(
    components: tuple[str, ...] | None = None,
    *,
    source: HealthSource | None = None,
    policy: HealthPolicy | None = None,
) -> dict[str, Any]:
    """The guide's health check: ``{"healthy": bool, "issues": [...], ...details}``.

    Judged by the health rules (error rate, latency, mismatches) on this process's metrics when a
    HealthReader is attached (``setup_telemetry()`` attaches one), else on the metrics file.
    Inconclusive migrations (too few samples) are healthy for this check and listed under
    ``"inconclusive"``; details per migration are under ``"migrations"``.
    """
    source = source or _default_source()
    policy = policy or HealthPolicy()
    names = components or tuple(dict.fromkeys([*GUIDE_COMPONENTS, *get_registry().names()]))
    issues: list[str] = []
    inconclusive: list[str] = []
    details: dict[str, Any] = {}
    for name in names:
        try:
            verdict = policy.evaluate(name, source)
        except CorruptStateError as exc:
            issues.append(f"{name}: {exc}")
            continue
        details[name] = verdict.to_dict()
        if verdict.status is Status.UNHEALTHY:
            issues.extend(f"{name}: {reason}" for reason in verdict.reasons)
        elif verdict.status is Status.INCONCLUSIVE:
            inconclusive.append(name)
    return {
        "healthy": not issues,
        "issues": issues,
        "inconclusive": inconclusive,
        "source": getattr(source, "name", str(source)),
        "migrations": details,
    }


class MigrationMetrics:
    """The guide's metrics object: phases from the store, counts from the metrics file."""

    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self._document = dict(document) if document is not None else None

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            try:
                self._document = read_metrics_file()
            except CorruptStateError as exc:
                logger.error("%s", exc)
                self._document = {}
        return self._document

    def get_migration_status(self) -> dict[str, Any]:
        """Phases and traffic split of every migration (``settings_phase``, ``database_phase``...)."""
        registry = get_registry()
        status: dict[str, Any] = {}
        for name in dict.fromkeys([*GUIDE_COMPONENTS, *registry.names()]):
            resolved = registry.migration(name).resolved().state
            status[f"{name}_phase"] = resolved.phase.value
            status[f"{name}_rollout"] = {
                "percent": resolved.rollout.percent, "compare": resolved.rollout.compare,
            }
            status[f"{name}_phase_source"] = resolved.source
            status[f"{name}_simplified_ratio"] = self._get_simplified_ratio(name)
        return status

    def _get_simplified_ratio(self, component: str) -> float:
        """Share of the calls callers got from simplified (0.0 with no calls)."""
        section = self.document.get(section_name(_component(component)), {})
        legacy = float(section.get("legacy_calls", 0))
        simplified = float(section.get("simplified_calls", 0))
        total = legacy + simplified
        return simplified / total if total else 0.0


def get_migration_metrics() -> MigrationMetrics:
    """The guide's ``get_migration_metrics()``."""
    return MigrationMetrics()


def log_migration_status() -> dict[str, Any]:
    """Log every migration's phase and split at INFO; returns what it logged."""
    status = get_migration_metrics().get_migration_status()
    for name in dict.fromkeys(k.rsplit("_phase", 1)[0] for k in status if k.endswith("_phase")):
        logger.info(
            "migration %s: phase %s (from %s), rollout %s, simplified share %.1f%%",
            name, status[f"{name}_phase"], status[f"{name}_phase_source"],
            status[f"{name}_rollout"], status[f"{name}_simplified_ratio"] * 100,
        )
    return status


def get_db_migration_status() -> dict[str, Any]:
    """The database migration's phase and whether the simple client serves traffic."""
    state = get_registry().migration("database").resolved().state
    using_simple = state.phase is Phase.SIMPLIFIED or (
        state.phase is Phase.HYBRID and state.rollout.percent > 0
    )
    return {
        "phase": state.phase.value,
        "migration_phase": state.phase.value,
        "using_simple": using_simple,
        "authoritative": (Implementation.SIMPLIFIED if state.phase is Phase.SIMPLIFIED
                          else Implementation.LEGACY).value,
        "rollout": {"percent": state.rollout.percent, "compare": state.rollout.compare,
                    "fallback": state.rollout.fallback},
        "phase_source": state.source,
        "simplified_ratio": MigrationMetrics()._get_simplified_ratio("database"),
    }

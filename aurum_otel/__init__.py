"""aurum-otel: migrate a live Python system from legacy to simplified, observed in OpenTelemetry."""

from aurum_otel.client import MigratedClient, migrate_client
from aurum_otel.compare import ComparisonResult, deep_compare, unordered_rows
from aurum_otel.errors import (
    AurumOtelError,
    ConfigurationError,
    CorruptStateError,
    MigrationDefinitionError,
    StateError,
    TransitionConflictError,
    UnknownMigrationError,
)
from aurum_otel.flags import GlobalFlags, MigrationFlags, read_flags
from aurum_otel.guide.api import (
    MigrationMetrics,
    advance_db_migration_phase,
    advance_migration_phase,
    get_db_migration_status,
    get_migration_metrics,
    log_migration_status,
    rollback_db_migration_phase,
    rollback_migration_phase,
    validate_migration_health,
)
from aurum_otel.hooks import BaseHooks, MigrationHooks, MismatchReport
from aurum_otel.migrated import MigratedFunction, Options, migrated, routing_key
from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, PhaseState, Role, Rollout
from aurum_otel.registry import configure, get_registry, reset
from aurum_otel.route import context_id_of as context_id
from aurum_otel.router import Decision, decide
from aurum_otel.setup import setup_telemetry
from aurum_otel.store import FileStore, PhaseStore, Transition

_LAZY = {
    "AurumSettings": "aurum_otel.settings",
    "load_settings": "aurum_otel.settings",
    "get_trino_client": "aurum_otel.database",
}


def __getattr__(name: str) -> object:
    # The Aurum components import trino and pydantic-settings models: only on first use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aurum_otel' has no attribute {name!r}")


__all__ = [
    "AurumOtelError",
    "AurumSettings",
    "BaseHooks",
    "Comparison",
    "ComparisonResult",
    "ConfigurationError",
    "CorruptStateError",
    "Decision",
    "FileStore",
    "GlobalFlags",
    "Implementation",
    "MigratedClient",
    "MigratedFunction",
    "MigrationDefinitionError",
    "MigrationFlags",
    "MigrationHooks",
    "MigrationMetrics",
    "MismatchReport",
    "Options",
    "Outcome",
    "Phase",
    "PhaseState",
    "PhaseStore",
    "Role",
    "Rollout",
    "StateError",
    "Transition",
    "TransitionConflictError",
    "UnknownMigrationError",
    "advance_db_migration_phase",
    "advance_migration_phase",
    "configure",
    "context_id",
    "decide",
    "deep_compare",
    "get_db_migration_status",
    "get_migration_metrics",
    "get_registry",
    "get_trino_client",
    "load_settings",
    "log_migration_status",
    "migrate_client",
    "migrated",
    "read_flags",
    "reset",
    "rollback_db_migration_phase",
    "rollback_migration_phase",
    "routing_key",
    "setup_telemetry",
    "unordered_rows",
    "validate_migration_health",
]

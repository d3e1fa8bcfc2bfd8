"""aurum-otel: migrate a live Python system from legacy to simplified, observed in OpenTelemetry."""

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
from aurum_otel.hooks import BaseHooks, MigrationHooks, MismatchReport
from aurum_otel.migrated import MigratedFunction, Options, migrated, routing_key
from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, PhaseState, Role, Rollout
from aurum_otel.registry import configure, get_registry, reset
from aurum_otel.router import Decision, decide
from aurum_otel.store import FileStore, PhaseStore, Transition
from aurum_otel.telemetry import setup_telemetry

__all__ = [
    "AurumOtelError",
    "BaseHooks",
    "Comparison",
    "ComparisonResult",
    "ConfigurationError",
    "CorruptStateError",
    "Decision",
    "FileStore",
    "GlobalFlags",
    "Implementation",
    "MigratedFunction",
    "MigrationDefinitionError",
    "MigrationFlags",
    "MigrationHooks",
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
    "configure",
    "decide",
    "deep_compare",
    "get_registry",
    "migrated",
    "read_flags",
    "reset",
    "routing_key",
    "setup_telemetry",
    "unordered_rows",
]

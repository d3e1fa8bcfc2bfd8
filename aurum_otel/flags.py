"""Feature flags from the environment, read with pydantic-settings into immutable objects.

Nothing here writes ``os.environ``. Each migration reads ``AURUM_MIGRATION_<NAME>_{ENABLED,PHASE,
PERCENT,COMPARE,FALLBACK,MONITORING}``; the two migrations of the Aurum migration guide also answer
to the guide's names (``AURUM_USE_SIMPLIFIED_SETTINGS``, ``AURUM_DB_MIGRATION_PHASE``, ...).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aurum_otel.errors import ConfigurationError
from aurum_otel.names import env_token
from aurum_otel.phase import Phase

logger = logging.getLogger("aurum_otel.flags")

GLOBAL_MONITORING = "AURUM_ENABLE_MIGRATION_MONITORING"

# The migration guide's variable names, per migration and field (checked before the generic ones).
GUIDE_NAMES: dict[str, dict[str, str]] = {
    "settings": {
        "enabled": "AURUM_USE_SIMPLIFIED_SETTINGS",
        "phase": "AURUM_SETTINGS_MIGRATION_PHASE",
        "monitoring": GLOBAL_MONITORING,
    },
    "database": {
        "enabled": "AURUM_USE_SIMPLE_DB_CLIENT",
        "phase": "AURUM_DB_MIGRATION_PHASE",
        "monitoring": "AURUM_ENABLE_DB_MIGRATION_MONITORING",
    },
}

_ALLOWED = {
    "enabled": "0 or 1 (also true/false, yes/no, on/off)",
    "monitoring": "0 or 1 (also true/false, yes/no, on/off)",
    "fallback": "0 or 1 (also true/false, yes/no, on/off)",
    "phase": "legacy, hybrid, simplified",
    "percent": "a number from 0 to 100",
    "compare": "a number from 0 to 100",
    "refresh_interval": "a number of seconds, more than 0 and at most 60 (e.g. 0.5)",
}

# Kept for callers of the old name; the token is defined in aurum_otel.names.
env_key = env_token


def variables_for(name: str) -> dict[str, tuple[str, ...]]:
    """Every environment variable a migration reads, per field, in the order they are checked.

    Raises:
        ConfigurationError: ``name`` is not a valid migration name (see :mod:`aurum_otel.names`).
    """
    generic = f"AURUM_MIGRATION_{env_token(name)}_"
    guide = GUIDE_NAMES.get(name, {})
    fields = ("enabled", "phase", "percent", "compare", "fallback", "monitoring")
    out: dict[str, tuple[str, ...]] = {}
    for field in fields:
        names = [generic + field.upper()]
        if field in guide and guide[field] != GLOBAL_MONITORING:
            names.insert(0, guide[field])
        out[field] = tuple(names)
    return out


class MigrationFlags(BaseSettings):
    """One migration's flags as the environment sets them; ``None`` means unset.

    Build it with :func:`read_flags` (or ``MigrationFlags.from_env(name)``), which knows the
    variable names of each migration.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, env_settings: Any,
                                   dotenv_settings: Any, file_secret_settings: Any) -> tuple[Any, ...]:
        # Flags come from the process environment only: no .env file, no secrets directory.
        return (init_settings, env_settings)

    enabled: bool | None = None
    phase: Phase | None = None
    percent: float | None = Field(default=None, ge=0, le=100)
    compare: float | None = Field(default=None, ge=0, le=100)
    fallback: bool | None = None
    monitoring: bool | None = None

    @field_validator("phase", mode="before")
    @classmethod
    def _phase_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, name: str) -> MigrationFlags:
        """Read ``name``'s flags, raising :class:`ConfigurationError` on a bad value."""
        return read_flags(name)

    @property
    def kill_switch(self) -> bool:
        return self.enabled is False


class GlobalFlags(BaseSettings):
    """Process-wide settings of aurum-otel itself."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    monitoring: bool = Field(default=True, validation_alias=GLOBAL_MONITORING)
    state_dir: Path = Field(
        default_factory=lambda: Path.home() / ".aurum", validation_alias="AURUM_STATE_DIR"
    )
    state_url: str | None = Field(default=None, validation_alias="AURUM_STATE_URL")
    refresh_interval: float = Field(
        default=0.5, gt=0, le=60, allow_inf_nan=False, validation_alias="AURUM_REFRESH_INTERVAL"
    )
    # Keys the hashed feature_flag.context.id; set it alike in every process to correlate a
    # routing key across them. Unset: a random key per process. Never exported.
    context_id_secret: SecretStr | None = Field(
        default=None, validation_alias="AURUM_CONTEXT_ID_SECRET", repr=False, exclude=True)

    @classmethod
    def from_env(cls, *, strict: bool = True) -> GlobalFlags:
        """Read the global settings.

        Args:
            strict: raise on a bad value (the CLI, ``from_env()`` callers). With ``False`` (a
                running process), a bad variable takes its own default and is logged once; the
                other variables keep their values.

        Raises:
            ConfigurationError: ``strict`` and a variable holds a bad value; the error names it.
        """
        problems = cls.problems()
        if not problems:
            return cls()
        if strict:
            raise problems[0]
        defaults: dict[str, Any] = {}
        for problem in problems:
            field = next(f for f, names in _GLOBAL_VARIABLES.items() if problem.variable in names)
            default = cls.model_fields[field].get_default(call_default_factory=True)
            defaults[problem.variable] = default
            _log_once(f"{problem}; using its default {default}")
        return cls(**defaults)

    @classmethod
    def problems(cls) -> list[ConfigurationError]:
        """One error per global variable whose value is bad, in variable-name order."""
        found = []
        for field, (variable,) in sorted(_GLOBAL_VARIABLES.items(), key=lambda i: i[1]):
            if variable not in os.environ or not os.environ[variable]:
                continue
            try:
                cls.__pydantic_validator__.validate_assignment(
                    cls.model_construct(), field, os.environ[variable])
            except ValidationError:
                found.append(ConfigurationError(variable, os.environ[variable],
                                                _ALLOWED.get(field, "see the README")))
        return found


_GLOBAL_VARIABLES = {
    "monitoring": (GLOBAL_MONITORING,),
    "state_dir": ("AURUM_STATE_DIR",),
    "state_url": ("AURUM_STATE_URL",),
    "refresh_interval": ("AURUM_REFRESH_INTERVAL",),
    "context_id_secret": ("AURUM_CONTEXT_ID_SECRET",),
}
_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        logger.error(message)


@functools.cache
def _flags_class(name: str) -> type[MigrationFlags]:
    # One subclass per migration name, whose fields know that migration's variable names.
    annotations = MigrationFlags.__annotations__
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for field, names in variables_for(name).items():
        base = MigrationFlags.model_fields[field]
        namespace["__annotations__"][field] = annotations[field]
        namespace[field] = Field(
            default=None,
            validation_alias=AliasChoices(*names),
            ge=0 if field in ("percent", "compare") else None,
            le=100 if field in ("percent", "compare") else None,
            description=base.description,
        )
    return type(f"MigrationFlags_{env_token(name)}", (MigrationFlags,), namespace)


def read_flags(name: str) -> MigrationFlags:
    """Read migration ``name``'s flags from the environment.

    Raises:
        ConfigurationError: a variable holds a value that is not allowed; the error names the
            variable and the allowed values.
    """
    try:
        return _flags_class(name)()
    except ValidationError as exc:
        raise _configuration_error(exc, variables_for(name)) from None


class FlagReader:
    """Reads one migration's flags, parsing again only when one of its variables changed.

    The environment itself is looked at on every :meth:`read` (a dozen dictionary lookups), so a
    change is never missed; pydantic's parse, which costs milliseconds, runs only on a change.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._fingerprint: tuple[str | None, ...] | None = None
        self._flags: MigrationFlags | None = None
        self._error: ConfigurationError | None = None
        try:
            self._variables = tuple(v for names in variables_for(name).values() for v in names)
        except ConfigurationError as exc:
            # An invalid name has no variables: every read reports it (the call runs on legacy).
            self._variables, self._fingerprint, self._error = (), (), exc

    def read(self) -> MigrationFlags:
        """The flags, or raise the :class:`ConfigurationError` the current values deserve."""
        environ = os.environ
        fingerprint = tuple(environ.get(v) for v in self._variables)
        if fingerprint != self._fingerprint:
            try:
                self._flags, self._error = read_flags(self.name), None
            except ConfigurationError as exc:
                self._flags, self._error = None, exc
            self._fingerprint = fingerprint
        if self._error is not None:
            raise self._error
        assert self._flags is not None
        return self._flags


def monitoring_enabled(flags: MigrationFlags, global_flags: GlobalFlags) -> bool:
    """Monitoring is on unless the global switch or the migration's own switch says 0."""
    return global_flags.monitoring and flags.monitoring is not False


def _configuration_error(
    exc: ValidationError, variables: Mapping[str, tuple[str, ...]]
) -> ConfigurationError:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    # loc may be the alias the value came from, or the field name.
    for candidate_field, names in variables.items():
        if field == candidate_field or field.upper() in names:
            field = candidate_field
            variable = next((n for n in names if n in os.environ), names[0])
            break
    else:
        variable = field
    value = os.environ.get(variable, error.get("input"))
    return ConfigurationError(variable, value, _ALLOWED.get(field, error["msg"]))

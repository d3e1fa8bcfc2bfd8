"""One error hierarchy for aurum-otel: every error says what to change."""

from __future__ import annotations

from collections.abc import Iterable


def error_type(error: BaseException) -> str:
    """The fully qualified class name of an exception (``error.type``)."""
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class AurumOtelError(Exception):
    """Base class of every error raised by aurum-otel."""


class ConfigurationError(AurumOtelError, ValueError):
    """A setting (environment variable, argument, YAML field) has a value that cannot be used.

    Attributes:
        variable: the name of the setting, e.g. ``AURUM_SETTINGS_MIGRATION_PHASE``.
        value: the offending value (never a secret: callers redact before raising).
        allowed: a human description of the values that would work.
    """

    def __init__(self, variable: str, value: object, allowed: str | Iterable[str]) -> None:
        allowed_text = allowed if isinstance(allowed, str) else ", ".join(allowed)
        self.variable = variable
        self.value = value
        self.allowed = allowed_text
        super().__init__(f"{variable}={value!r} is not valid; allowed: {allowed_text}")


class UnknownMigrationError(AurumOtelError, KeyError):
    """A migration name that nothing registered or configured."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"unknown migration {name!r}; known migrations: {', '.join(self.known) or '(none)'}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class StateError(AurumOtelError):
    """The phase store cannot be read or written."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class CorruptStateError(StateError):
    """The state file exists but is not a valid aurum-otel state document.

    Attributes:
        path: the state file.
        kept_at: where the bad file was moved aside, when it was.
    """

    def __init__(self, message: str, *, path: str, kept_at: str | None = None) -> None:
        self.kept_at = kept_at
        super().__init__(message, path=path)


class TransitionConflictError(StateError):
    """A compare-and-set transition lost: the phase was not what the caller expected."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"migration {name!r} is in phase {actual!r}, not {expected!r}: another controller "
            "changed it first; re-read the status and decide again"
        )


class MigrationDefinitionError(AurumOtelError, TypeError):
    """A decorator was used in a way that cannot work (say, async legacy with a sync simplified)."""

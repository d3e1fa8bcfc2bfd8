"""Extension points: user code called by aurum-otel, always guarded.

Implement :class:`MigrationHooks` (the ``Protocol``) or subclass :class:`BaseHooks` and override what
you need. A hook that raises is logged and ignored: it can never change a caller's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aurum_otel.phase import Comparison, Implementation, Phase

logger = logging.getLogger("aurum_otel.hooks")


@dataclass(frozen=True, slots=True)
class MismatchReport:
    """What a shadow comparison found, free of secrets and of user values beyond the differences.

    Attributes:
        name: the migration.
        phase: the phase in force.
        authoritative: the implementation the caller got.
        shadow: the implementation run as a shadow.
        result: ``mismatch``, ``error`` or ``timeout``.
        differences: where and how the results differ (paths, types, lengths, keyed hashes),
            never values; secrets redacted.
        authoritative_error: the exception type the authoritative raised, if it did.
        shadow_error: the exception type the shadow raised, if it did.
        trace_id: the hex trace id of the routed call, to find it in Jaeger or Tempo.
    """

    name: str
    phase: Phase
    authoritative: Implementation
    shadow: Implementation
    result: Comparison
    differences: tuple[str, ...] = ()
    authoritative_error: str | None = None
    shadow_error: str | None = None
    trace_id: str | None = None

    def summary(self) -> str:
        parts = [f"{self.name}: {self.shadow.value} shadow {self.result.value} vs "
                 f"{self.authoritative.value}"]
        if self.authoritative_error:
            parts.append(f"authoritative raised {self.authoritative_error}")
        if self.shadow_error:
            parts.append(f"shadow raised {self.shadow_error}")
        parts.extend(self.differences)
        return "; ".join(parts)


@runtime_checkable
class MigrationHooks(Protocol):
    """Callbacks for what happens on the call path and in the controller."""

    def on_mismatch(self, report: MismatchReport) -> None: ...

    def on_fallback(self, name: str, error: BaseException) -> None: ...

    def on_transition(self, transition: Any) -> None: ...


class BaseHooks:
    """Hooks that do nothing; subclass and override what you need."""

    def on_mismatch(self, report: MismatchReport) -> None:
        """Called after a shadow comparison that did not match."""

    def on_fallback(self, name: str, error: BaseException) -> None:
        """Called when simplified raised and legacy served the call instead."""

    def on_transition(self, transition: Any) -> None:
        """Called after the controller or an operator changed a phase."""


def call_hook(hooks: object | None, method: str, *args: Any) -> None:
    """Call ``hooks.method(*args)``, logging and swallowing whatever it raises."""
    if hooks is None:
        return
    function = getattr(hooks, method, None)
    if function is None:
        return
    try:
        function(*args)
    except Exception:
        logger.exception("aurum-otel hook %s raised; ignored", method)

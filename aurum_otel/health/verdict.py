"""Verdicts: what a health rule concluded, always with the figures that led there."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The conclusion of a rule or of a whole evaluation."""

    HEALTHY = "healthy"
    """Every figure is within its threshold."""
    UNHEALTHY = "unhealthy"
    """At least one figure broke its threshold: the controller counts towards a rollback."""
    INCONCLUSIVE = "inconclusive"
    """Not enough samples to judge: never advances, never rolls back."""


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's finding.

    Attributes:
        rule: the rule's name, e.g. ``error_rate``.
        status: its conclusion.
        message: one sentence a person can act on.
        value: the measured figure (``None`` when it could not be measured).
        threshold: the bound it was held to.
        window: seconds of data considered.
        samples: the sample counts per side, e.g. ``{"legacy": 120, "simplified": 14}``.
        query: how the value was obtained (PromQL, or ``in-process``).
        dry_run: the rule runs in dry-run mode: its status is shown, never acted on (it is
            left out of the verdict's status).
    """

    rule: str
    status: Status
    message: str
    value: float | None = None
    threshold: float | None = None
    window: float | None = None
    samples: dict[str, float] = field(default_factory=dict)
    query: str | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status.value,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "window_seconds": self.window,
            "samples": dict(self.samples),
            "query": self.query,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The health of one migration: a status and every rule result behind it."""

    name: str
    status: Status
    results: tuple[RuleResult, ...]
    source: str = "in-process"

    @property
    def healthy(self) -> bool:
        return self.status is Status.HEALTHY

    @property
    def reasons(self) -> list[str]:
        """The messages of the rules that decided the status (dry-run rules never decide)."""
        acting = [r for r in self.results if not r.dry_run]
        deciding = [r for r in acting if r.status is self.status]
        return [f"{r.rule}: {r.message}" for r in (deciding or acting or self.results)]

    @property
    def dry_run(self) -> list[str]:
        """What the dry-run rules concluded, to show beside the verdict (never acted on)."""
        return [f"{r.rule} (dry run): {r.status.value}: {r.message}"
                for r in self.results if r.dry_run]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "source": self.source,
            "reasons": self.reasons,
            "dry_run": self.dry_run,
            "results": [r.to_dict() for r in self.results],
        }


def combine_all(results: Iterable[Status]) -> Status:
    """All must hold: one unhealthy decides; else one inconclusive; else healthy."""
    statuses = list(results)
    if Status.UNHEALTHY in statuses:
        return Status.UNHEALTHY
    if Status.INCONCLUSIVE in statuses or not statuses:
        return Status.INCONCLUSIVE
    return Status.HEALTHY


def combine_any(results: Iterable[Status]) -> Status:
    """One must hold: one healthy decides; else one inconclusive; else unhealthy."""
    statuses = list(results)
    if Status.HEALTHY in statuses:
        return Status.HEALTHY
    if Status.INCONCLUSIVE in statuses or not statuses:
        return Status.INCONCLUSIVE
    return Status.UNHEALTHY

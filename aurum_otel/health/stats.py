"""What a health source measures over a window, in one shape for every source."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aurum_otel.phase import Implementation


@dataclass(frozen=True, slots=True)
class SideStats:
    """One implementation's figures over the window (all roles: authoritative and shadow).

    Attributes:
        calls: runs of this implementation.
        errors: runs that raised.
        buckets: cumulative duration histogram as ``(upper bound seconds, count)``, last ``inf``.
    """

    calls: float = 0.0
    errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls > 0 else None

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.buckets)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """A migration's figures over ``window`` seconds from one source."""

    name: str
    window: float
    legacy: SideStats = SideStats()
    simplified: SideStats = SideStats()
    matches: float = 0.0
    mismatches: float = 0.0
    source: str = "in-process"
    queries: Mapping[str, str] = field(default_factory=dict)
    quantiles: Mapping[str, float] = field(default_factory=dict)  # precomputed by a backend
    backend: QuantileBackend | None = None  # asked for the quantiles a rule needs

    def side(self, implementation: Implementation) -> SideStats:
        return self.legacy if implementation is Implementation.LEGACY else self.simplified

    def quantile(self, implementation: Implementation, q: float) -> float | None:
        """The ``q`` latency quantile, ``None`` when it cannot be measured (or is not finite)."""
        key = f"{implementation.value}:{q:g}"
        if key in self.quantiles:
            value: float | None = self.quantiles[key]
        elif self.backend is not None:
            value = self.backend.quantile(implementation, q)
        else:
            value = self.side(implementation).quantile(q)
        return value if value is not None and math.isfinite(value) and value >= 0 else None

    def problem(self) -> str | None:
        """Why these figures cannot be judged (a count not finite, negative, or errors above
        calls), ``None`` when they can: such data is inconclusive and never moves a migration."""
        figures = {
            "legacy calls": self.legacy.calls, "legacy errors": self.legacy.errors,
            "simplified calls": self.simplified.calls,
            "simplified errors": self.simplified.errors,
            "matches": self.matches, "mismatches": self.mismatches,
        }
        for implementation, side in (("legacy", self.legacy), ("simplified", self.simplified)):
            for bound, count in side.buckets:
                figures[f"{implementation} histogram count at le={bound:g}"] = count
        for label, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{label} is missing ({value!r})"
            if not math.isfinite(value) or value < 0:
                return f"{label} is {value!r}, not a finite count"
        for implementation, side in (("legacy", self.legacy), ("simplified", self.simplified)):
            if side.errors > side.calls:
                return f"{implementation} errors ({side.errors:g}) exceed its calls ({side.calls:g})"
        return None

    def latency_query(self, q: float) -> str:
        """How the ``q`` quantile is obtained (PromQL, or the source)."""
        if self.backend is not None:
            return self.backend.query(q)
        return self.queries.get(f"latency:{q:g}", self.queries.get("latency", self.source))


class QuantileBackend(Protocol):
    """A backend that computes latency quantiles itself (e.g. PromQL's histogram_quantile)."""

    def quantile(self, implementation: Implementation, q: float) -> float | None: ...

    def query(self, q: float) -> str: ...


class HealthSource(Protocol):
    """Where figures come from: in-process metrics, Prometheus, or the metrics file."""

    name: str

    def stats(self, migration: str, window: float) -> WindowStats: ...


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, computed as Prometheus's ``histogram_quantile``.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0; a
    rank in the ``+Inf`` bucket answers the highest finite bound. ``None`` without observations.
    """
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound

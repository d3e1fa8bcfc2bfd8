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

    def side(self, implementation: Implementation) -> SideStats:
        return self.legacy if implementation is Implementation.LEGACY else self.simplified

    def quantile(self, implementation: Implementation, q: float) -> float | None:
        key = f"{implementation.value}:{q:g}"
        if key in self.quantiles:
            value = self.quantiles[key]
            return None if math.isnan(value) else value
        return self.side(implementation).quantile(q)


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

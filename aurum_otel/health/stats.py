"""What a health source measures over a window, in one shape for every source."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
class ConfiguredSplit:
    """The split a migration is configured to serve, as a health source is told it.

    Attributes:
        percent: share (0-100) of authoritative calls simplified should serve.
        since: when the step began (Unix time), so the split is counted on this step only;
            ``None``: unknown, the whole window is counted.
        step: the step as people read it (``hybrid 10%/100%``).
    """

    percent: float
    since: float | None = None
    step: str = ""


SplitOf = Callable[[str], "ConfiguredSplit | None"]
"""``migration -> its configured split`` (``None``: unknown), what a source is told."""


@dataclass(frozen=True, slots=True)
class SplitStats:
    """The authoritative split a source observed, beside the split it was configured to serve.

    Attributes:
        percent: the configured share (0-100) of calls simplified serves (the step's percent;
            0 in the legacy phase, 100 in the simplified phase).
        legacy: authoritative calls routed to legacy (fallbacks not counted: they were routed
            to simplified).
        simplified: authoritative calls routed to simplified.
        window: seconds counted: the policy's window, or the part of it since the step began.
        step: the configured step, as people read it (``hybrid 10%/100%``).
        query: how the counts were obtained (PromQL, or the source).
        legacy_keys: distinct routing keys routed to legacy since the step began;
            ``simplified_keys``: to simplified. Both 0 when the calls carried no routing key
            (split per call), ``None`` when the source does not count keys.
    """

    percent: float
    legacy: float = 0.0
    simplified: float = 0.0
    window: float = 0.0
    step: str = ""
    query: str = ""
    legacy_keys: float | None = None
    simplified_keys: float | None = None

    @property
    def keys(self) -> float:
        """Distinct routing keys counted since the step began (0: none, or not counted)."""
        return (self.legacy_keys or 0.0) + (self.simplified_keys or 0.0)

    @property
    def calls(self) -> float:
        return self.legacy + self.simplified


@dataclass(frozen=True, slots=True)
class PairStats:
    """Shadowed calls where both sides completed, compared pair by pair.

    Attributes:
        pairs: pairs in the window.
        legacy_only_failed: pairs where legacy raised and simplified did not.
        simplified_only_failed: pairs where simplified raised and legacy did not.
        slower: pairs where simplified took longer than legacy; ``faster``: shorter.
        ratios: cumulative histogram of simplified/legacy duration per pair,
            ``(upper bound, count)``, the last bound ``inf``.
    """

    pairs: float = 0.0
    legacy_only_failed: float = 0.0
    simplified_only_failed: float = 0.0
    slower: float = 0.0
    faster: float = 0.0
    ratios: tuple[tuple[float, float], ...] = ()


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
    split: SplitStats | None = None  # None: this source does not know the configured split
    metrics: MetricBackend | None = None  # runs custom metric rules' PromQL (Prometheus only)
    pairs: PairStats | None = None  # shadow pairs compared one by one (not counted yet)

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
        figures: dict[str, object] = {
            "legacy calls": self.legacy.calls, "legacy errors": self.legacy.errors,
            "simplified calls": self.simplified.calls,
            "simplified errors": self.simplified.errors,
            "matches": self.matches, "mismatches": self.mismatches,
        }
        if self.split is not None:
            figures["split percent"] = self.split.percent
            figures["authoritative legacy calls"] = self.split.legacy
            figures["authoritative simplified calls"] = self.split.simplified
            if self.split.legacy_keys is not None or self.split.simplified_keys is not None:
                figures["legacy routing keys"] = self.split.legacy_keys
                figures["simplified routing keys"] = self.split.simplified_keys
        for implementation, side in (("legacy", self.legacy), ("simplified", self.simplified)):
            for bound, count in side.buckets:
                figures[f"{implementation} histogram count at le={bound:g}"] = count
        for label, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{label} is missing ({value!r})"
            if not math.isfinite(value) or value < 0:
                return f"{label} is {value!r}, not a finite count"
        if self.split is not None and self.split.percent > 100:
            return f"split percent is {self.split.percent!r}, not a share from 0 to 100"
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


class MetricBackend(Protocol):
    """A backend that runs a custom metric rule's PromQL over the window (Prometheus)."""

    def measurements(self, expression: str, window: float, interval: float,
                     breach: str) -> tuple[float, float, str]:
        """``(measurements, breaches, query)``: how many of the window's evaluations of
        ``expression`` (one every ``interval`` seconds) had a value, how many of those satisfy
        ``breach`` (e.g. ``> 0.5``), and the PromQL asked."""
        ...


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

"""What a report shows of one migration, whichever source the figures came from.

Times are Unix seconds (wall clock: these are records, not latencies). A value of NaN is a gap
(no calls in that interval), drawn as a break in the line, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Okabe-Ito, the colour-blind-safe palette; one colour per meaning, the same on every plot.
COLOURS = {
    "legacy": "#E69F00",      # orange
    "simplified": "#0072B2",  # blue
    "ratio": "#009E73",       # bluish green
    "mismatch": "#D55E00",    # vermillion
    "configured": "#CC79A7",  # reddish purple
    "threshold": "#000000",   # black, dashed
    "healthy": "#009E73",
    "unhealthy": "#D55E00",
    "inconclusive": "#56B4E9",  # sky blue
}
IMPLEMENTATIONS = ("legacy", "simplified")


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``key`` picks its colour (an implementation, ``ratio``, ``mismatch``...)."""

    label: str
    key: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Threshold:
    """A horizontal rule line on a plot (a health rule's limit)."""

    value: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A step of the migration (phase, and in hybrid the rollout) from ``start`` to ``end``."""

    start: float
    end: float
    label: str
    percent: float  # the share of calls the step routes to simplified (the configured split)


@dataclass(frozen=True, slots=True)
class Marker:
    """A transition: when, to which step, who and why."""

    at: float
    to: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class VerdictPoint:
    at: float
    status: str  # healthy | unhealthy | inconclusive
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Period:
    """The time axis every plot of a migration shares: its span, steps and transitions."""

    start: float
    end: float
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """The health rules' thresholds, in the plots' units."""

    error_rate: float = 5.0   # percent
    ratio: float = 1.5
    mismatch_rate: float = 0.1  # percent


@dataclass(frozen=True, slots=True)
class MigrationData:
    """Everything the report draws for one migration."""

    name: str
    start: float
    end: float
    source: str
    calls: tuple[Series, ...] = ()
    error_rate: tuple[Series, ...] = ()
    latency: tuple[Series, ...] = ()
    ratio: tuple[Series, ...] = ()
    mismatch: tuple[Series, ...] = ()
    split: tuple[Series, ...] = ()
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()
    verdicts: tuple[VerdictPoint, ...] | None = None
    limits: Limits = Limits()
    notes: tuple[str, ...] = field(default=())

    @property
    def period(self) -> Period:
        return Period(self.start, self.end, self.bands, self.markers)

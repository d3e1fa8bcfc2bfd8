"""The migration's steps and transitions over a period, from the phase store's history."""

from __future__ import annotations

import math
from collections.abc import Sequence

from aurum_otel.health import ErrorRateRule, LatencyRule, MismatchRule
from aurum_otel.phase import Phase, Rollout
from aurum_otel.report.model import Band, Limits, Marker, Series
from aurum_otel.store import Transition


def step_text(phase: Phase, rollout: Rollout) -> str:
    if phase is Phase.HYBRID:
        return f"hybrid {rollout.percent:g}% / compare {rollout.compare:g}%"
    return phase.value


def routed_percent(phase: Phase, rollout: Rollout) -> float:
    """The share of calls (percent) the step serves from simplified."""
    if phase is Phase.SIMPLIFIED:
        return 100.0
    if phase is Phase.HYBRID:
        return float(rollout.percent)
    return 0.0


def bands_and_markers(history: Sequence[Transition], start: float, end: float
                      ) -> tuple[tuple[Band, ...], tuple[Marker, ...]]:
    """The steps (clipped to ``start..end``) and the transitions inside the period."""
    changes = sorted(history, key=lambda t: t.at)
    bands: list[Band] = []
    if changes:
        first = changes[0]
        before = Phase(first.from_phase)
        bands.append(Band(start, first.at, step_text(before, Rollout()),
                          routed_percent(before, Rollout())))
    else:
        bands.append(Band(start, end, "legacy (no transition recorded)", 0.0))
    for i, change in enumerate(changes):
        until = changes[i + 1].at if i + 1 < len(changes) else end
        phase = Phase(change.to_phase)
        bands.append(Band(change.at, until, step_text(phase, change.rollout),
                          routed_percent(phase, change.rollout)))
    clipped = tuple(Band(max(b.start, start), min(b.end, end), b.label, b.percent)
                    for b in bands if b.end > start and b.start < end)
    markers = tuple(Marker(t.at, step_text(Phase(t.to_phase), t.rollout), t.actor, t.reason)
                    for t in changes if start <= t.at <= end)
    return clipped, markers


def configured_split(bands: Sequence[Band]) -> Series:
    """The split the steps ask for, as a step line (percent served by simplified)."""
    points: list[tuple[float, float]] = []
    for band in bands:
        points += [(band.start, band.percent), (band.end, band.percent)]
    return Series("configured (simplified %)", "configured", tuple(points), dashed=True)


def thresholds() -> Limits:
    """The default health rules' limits, in the report's units."""
    return Limits(error_rate=ErrorRateRule().max_rate * 100, ratio=LatencyRule().max_ratio,
                  mismatch_rate=MismatchRule().max_rate * 100)


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return math.nan
    return numerator / denominator * scale

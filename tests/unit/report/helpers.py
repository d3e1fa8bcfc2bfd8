"""Synthetic metrics-file sections and store histories for the report tests."""

from __future__ import annotations

from typing import Any

from aurum_otel.health.file import add_to_windows
from aurum_otel.phase import Phase, Rollout
from aurum_otel.store import Transition

BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1)
T0 = 1_800_000_000.0  # a round Unix time (bucket aligned)


def counts(at_bucket: int, n: int) -> list[int]:
    """``n`` observations all in histogram bucket ``at_bucket``."""
    out = [0] * (len(BOUNDS) + 1)
    out[at_bucket] = n
    return out


def section(buckets: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """A metrics-file section holding ``(time, increments)`` flushes."""
    out: dict[str, Any] = {}
    for moment, increments in buckets:
        add_to_windows(out, moment, "hybrid", increments, BOUNDS, 0.0)
    return out


def flush(legacy: tuple[int, int, int], simplified: tuple[int, int, int],
          match: int = 0, mismatch: int = 0) -> dict[str, Any]:
    """(calls, errors, histogram bucket of every call) per implementation."""
    return {"implementations": {
        "legacy": {"calls": legacy[0], "errors": legacy[1], "counts": counts(legacy[2], legacy[0])},
        "simplified": {"calls": simplified[0], "errors": simplified[1],
                       "counts": counts(simplified[2], simplified[0])},
    }, "comparisons": {"match": match, "mismatch": mismatch}}


def history() -> list[Transition]:
    return [
        Transition("orders", Phase.LEGACY, Phase.HYBRID, Rollout(0, 100), "alice",
                   "start the shadow run", T0 + 10),
        Transition("orders", Phase.HYBRID, Phase.HYBRID, Rollout(50, 25), "controller",
                   "healthy for 60 s", T0 + 40),
        Transition("orders", Phase.HYBRID, Phase.LEGACY, Rollout(), "controller",
                   "error rate 12 % above 5 %", T0 + 70),
    ]

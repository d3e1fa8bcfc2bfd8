"""Captured examples grouped by signature: what ``aurum-migrate mismatches`` shows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_TRACES = 5


@dataclass(slots=True)
class Group:
    """The examples of one signature.

    Attributes:
        signature: the short hex hash (:mod:`aurum_otel.forensics.signature`).
        shape: how the results differ (``port: type int!=str``), value-free.
        count: mismatches seen: examples stored plus those the rate limit suppressed before them.
        stored: examples stored.
        first_seen: the earliest stored example's time (seconds since the epoch).
        last_seen: the latest one's.
        example: the latest stored example (redacted).
        trace_ids: the latest trace ids, newest first.
        examples: every stored example, oldest first (for replay and export).
    """

    signature: str
    shape: list[str]
    count: int = 0
    stored: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    example: dict[str, Any] = field(default_factory=dict)
    trace_ids: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def share(self, comparisons: float | None) -> float | None:
        """This signature's share of all comparisons, when their number is known."""
        if not comparisons:
            return None
        return min(self.count / comparisons, 1.0)

    def to_dict(self, comparisons: float | None, jaeger_url: str | None) -> dict[str, Any]:
        return {
            "signature": self.signature, "shape": self.shape, "count": self.count,
            "stored": self.stored, "first_seen": self.first_seen, "last_seen": self.last_seen,
            "share": self.share(comparisons), "trace_ids": self.trace_ids,
            "trace_links": [trace_link(jaeger_url, t) for t in self.trace_ids] if jaeger_url else [],
            "example": self.example,
        }


def group(records: Iterable[dict[str, Any]]) -> list[Group]:
    """Group stored examples by signature; the most frequent signature first."""
    groups: dict[str, Group] = {}
    for record in records:
        signature = str(record.get("signature") or "unknown")
        shape = record.get("shape")
        found = groups.get(signature)
        if found is None:
            found = groups[signature] = Group(
                signature, [str(s) for s in shape] if isinstance(shape, list) else [])
        when = record.get("time")
        when = float(when) if isinstance(when, int | float) else 0.0
        suppressed = record.get("suppressed_before")
        found.count += 1 + (suppressed if isinstance(suppressed, int) and suppressed > 0 else 0)
        found.stored += 1
        found.first_seen = when if found.stored == 1 else min(found.first_seen, when)
        if when >= found.last_seen:
            found.last_seen = when
            found.example = record
        trace = record.get("trace_id")
        if isinstance(trace, str) and trace:
            found.trace_ids = ([trace] + [t for t in found.trace_ids if t != trace])[:MAX_TRACES]
        found.examples.append(record)
    return sorted(groups.values(), key=lambda g: (-g.count, g.signature))


def trace_link(jaeger_url: str | None, trace_id: str) -> str:
    """The Jaeger UI page of ``trace_id``."""
    return f"{(jaeger_url or '').rstrip('/')}/trace/{trace_id}"


def total_comparisons(metrics: dict[str, Any], name: str) -> float | None:
    """All comparisons of ``name`` counted in the metrics file (any result), if it has them."""
    section = metrics.get(f"{name}_migration")
    comparisons = section.get("comparisons") if isinstance(section, dict) else None
    if not isinstance(comparisons, dict):
        return None
    total = sum(v for v in comparisons.values() if isinstance(v, int | float) and v > 0)
    return float(total) or None

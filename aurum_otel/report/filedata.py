"""A migration's figures over time from the metrics file's timestamped 10 s buckets.

The buckets keep runs per implementation (served and shadow together: they carry no role), errors,
the duration histogram and comparison results. Every bucket interval in the period gets a point:
an interval without runs is zero runs per second and a gap in every rate, never a zero rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aurum_otel.guide.file_source import read_metrics_file, section_name
from aurum_otel.health import histogram_quantile
from aurum_otel.health.file import BUCKET_SECONDS
from aurum_otel.report.model import IMPLEMENTATIONS, MigrationData, Series
from aurum_otel.report.steps import bands_and_markers, configured_split, ratio, thresholds
from aurum_otel.store import Transition

Figures = dict[str, dict[str, Any]]


def _count(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def merged_buckets(section: Mapping[str, Any], start: float, end: float,
                   width: float = BUCKET_SECONDS) -> dict[float, Figures]:
    """``bucket start -> {"impl": {calls, errors, counts}, "comparisons": {...}}`` in the period,
    the buckets of different steps that share a start added together."""
    out: dict[float, Figures] = {}
    for bucket in section.get("windows") or []:
        if not isinstance(bucket, dict):
            continue
        moment = bucket.get("t")
        if isinstance(moment, bool) or not isinstance(moment, int | float):
            continue
        if moment + width < start or moment > end:
            continue
        slot = out.setdefault(float(moment), {"comparisons": defaultdict(float)})
        for impl, figures in (bucket.get("implementations") or {}).items():
            if not isinstance(figures, dict):
                continue
            side = slot.setdefault(impl, {"calls": 0.0, "errors": 0.0, "counts": []})
            side["calls"] += _count(figures.get("calls"))
            side["errors"] += _count(figures.get("errors"))
            counts = [_count(c) for c in figures.get("counts") or []]
            if len(side["counts"]) < len(counts):
                side["counts"] += [0.0] * (len(counts) - len(side["counts"]))
            for i, count in enumerate(counts):
                side["counts"][i] += count
        for result, count in (bucket.get("comparisons") or {}).items():
            slot["comparisons"][result] += _count(count)
    return out


def _quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    running, cumulative = 0.0, []
    for edge, count in zip([*bounds, math.inf], counts, strict=False):
        running += count
        cumulative.append((float(edge), running))
    value = histogram_quantile(q, cumulative) if running > 0 else None
    return math.nan if value is None else value * 1000.0


def from_section(name: str, section: Mapping[str, Any], history: Sequence[Transition], *,
                 start: float, end: float, source: str) -> MigrationData:
    """The report's figures for ``name`` from its metrics-file ``section``."""
    width = float(section.get("bucket_seconds") or BUCKET_SECONDS)
    bounds = [float(b) for b in section.get("window_bounds") or []]
    buckets = merged_buckets(section, start, end, width)
    first = math.floor(start / width) * width
    times = [first + i * width for i in range(math.ceil((end - first) / width))]
    calls: dict[str, list[tuple[float, float]]] = {i: [] for i in IMPLEMENTATIONS}
    errors: dict[str, list[tuple[float, float]]] = {i: [] for i in IMPLEMENTATIONS}
    latency: dict[tuple[str, float], list[tuple[float, float]]] = defaultdict(list)
    p95_ratio, mismatch, split = [], [], []
    for moment in times:
        slot = buckets.get(moment, {})
        at = moment + width / 2
        p95 = {}
        for impl in IMPLEMENTATIONS:
            side = slot.get(impl) or {"calls": 0.0, "errors": 0.0, "counts": []}
            calls[impl].append((at, side["calls"] / width))
            errors[impl].append((at, ratio(side["errors"], side["calls"], 100.0)))
            for q in (0.5, 0.95):
                value = _quantile(q, bounds, side["counts"]) if bounds else math.nan
                latency[(impl, q)].append((at, value))
                p95[impl] = value
        p95_ratio.append((at, ratio(p95["simplified"], p95["legacy"])))
        compared = slot.get("comparisons", {})
        mismatch.append((at, ratio(compared.get("mismatch", 0.0),
                                   compared.get("mismatch", 0.0) + compared.get("match", 0.0), 100.0)))
        runs = sum((slot.get(i) or {}).get("calls", 0.0) for i in IMPLEMENTATIONS)
        split.append((at, ratio((slot.get("simplified") or {}).get("calls", 0.0), runs, 100.0)))
    bands, markers = bands_and_markers(history, start, end)
    return MigrationData(
        name, start, end, source,
        calls=tuple(Series(f"{i} (runs/s)", i, tuple(calls[i])) for i in IMPLEMENTATIONS),
        error_rate=tuple(Series(i, i, tuple(errors[i])) for i in IMPLEMENTATIONS),
        latency=tuple(Series(f"{i} p{q * 100:g}", i, tuple(latency[(i, q)]), dashed=q == 0.5)
                      for i in IMPLEMENTATIONS for q in (0.5, 0.95)),
        ratio=(Series("p95 simplified / legacy", "ratio", tuple(p95_ratio)),),
        mismatch=(Series("mismatches / comparisons", "mismatch", tuple(mismatch)),),
        split=(Series("observed (simplified share of runs)", "simplified", tuple(split)),
               configured_split(bands)),
        bands=bands, markers=markers,
        notes=("File source: a run is a call served or a shadow run (the metrics file's buckets "
               "keep no role), so in hybrid with compare > 0 the observed split counts shadow runs "
               "too; Prometheus (--source prometheus) splits served calls exactly.",),
        limits=thresholds(),
    )


def gather_file(names: Sequence[str], histories: Mapping[str, Sequence[Transition]], *,
                start: float, end: float, path: Path | None = None) -> list[MigrationData]:
    """Every named migration's figures from the metrics file (default: the state dir's)."""
    document = read_metrics_file(path)
    where = path or "the metrics file"
    out = []
    for name in names:
        section = document.get(section_name(name))
        out.append(from_section(name, section if isinstance(section, dict) else {},
                                histories.get(name, ()), start=start, end=end,
                                source=f"file {where}"))
    return out

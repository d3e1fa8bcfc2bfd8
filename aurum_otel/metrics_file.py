"""``~/.aurum/migration_metrics.json``: the migration guide's metrics file, kept from real counts.

A metric exporter with delta temporality merges each export into the file under an inter-process
lock and rewrites it atomically, so several processes add up and none loses another's counts. The
guide's fields (``legacy_calls``, ``simplified_calls``, ``errors``, ``performance_ms``,
``migration_phase``) are kept per ``<name>_migration`` section, beside fuller figures (errors and
duration histogram per implementation, comparisons) that the ``file`` health source reads.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

from aurum_otel import semconv
from aurum_otel._files import locked, move_aside, read_json, write_json_atomic
from aurum_otel.errors import CorruptStateError, StateError
from aurum_otel.health.stats import SideStats, WindowStats

logger = logging.getLogger("aurum_otel.metrics_file")

FILE_NAME = "migration_metrics.json"
PERFORMANCE_SAMPLES = 100
GUIDE_SECTIONS = ("settings", "database")


def default_path() -> Path:
    from aurum_otel.registry import get_registry

    return get_registry().global_flags.state_dir / FILE_NAME


def section_name(migration: str) -> str:
    return f"{migration}_migration"


def empty_section(phase: str = "legacy") -> dict[str, Any]:
    return {
        "legacy_calls": 0,
        "simplified_calls": 0,
        "errors": 0,
        "performance_ms": [],
        "migration_phase": phase,
        "fallbacks": 0,
        "implementations": {},
        "comparisons": {},
        "updated_at": None,
    }


class MetricsFileExporter(MetricExporter):
    """Merges aurum-otel's metric deltas into the metrics file."""

    def __init__(self, path: Path | None = None, *, phase_of: Any = None) -> None:
        super().__init__(preferred_temporality={
            Counter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.DELTA,
        })
        self._path = path
        self._phase_of = phase_of

    @property
    def path(self) -> Path:
        return self._path or default_path()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        deltas = _deltas(metrics_data)
        try:
            merge(self.path, deltas, self._phases(deltas))
        except StateError as exc:
            logger.error("cannot update the metrics file: %s", exc)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def _phases(self, deltas: dict[str, dict[str, Any]]) -> dict[str, str]:
        from aurum_otel.registry import get_registry

        registry = get_registry()
        return {name: registry.migration(name).resolved().state.phase.value
                for name in {*deltas, *registry.names()}}

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def metrics_file_reader(path: Path | None = None, interval_millis: int = 5_000) -> Any:
    """A periodic reader that keeps the metrics file (flushed again at shutdown)."""
    return PeriodicExportingMetricReader(MetricsFileExporter(path),
                                         export_interval_millis=interval_millis)


def _deltas(data: MetricsData) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "calls": defaultdict(float), "hist": {}, "comparisons": defaultdict(float),
    })
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    a = point.attributes or {}
                    name = str(a.get(semconv.ATTR_NAME))
                    if metric.name == semconv.METRIC_CALLS:
                        key = (str(a.get(semconv.ATTR_IMPLEMENTATION)), str(a.get(semconv.ATTR_ROLE)),
                               str(a.get(semconv.ATTR_OUTCOME)))
                        out[name]["calls"][key] += point.value  # type: ignore[union-attr]
                    elif metric.name == semconv.METRIC_DURATION:
                        impl = str(a.get(semconv.ATTR_IMPLEMENTATION))
                        role = str(a.get(semconv.ATTR_ROLE))
                        slot = out[name]["hist"].setdefault(impl, {
                            "bounds": list(point.explicit_bounds),  # type: ignore[union-attr]
                            "counts": [0] * len(point.bucket_counts),  # type: ignore[union-attr]
                            "sum": 0.0, "count": 0, "min": None, "max": None,
                            "authoritative_sum": 0.0, "authoritative_count": 0,
                        })
                        for i, count in enumerate(point.bucket_counts):  # type: ignore[union-attr]
                            slot["counts"][i] += count
                        slot["sum"] += point.sum  # type: ignore[union-attr]
                        slot["count"] += point.count  # type: ignore[union-attr]
                        if role == "authoritative":
                            slot["authoritative_sum"] += point.sum  # type: ignore[union-attr]
                            slot["authoritative_count"] += point.count  # type: ignore[union-attr]
                    elif metric.name == semconv.METRIC_COMPARISONS:
                        out[name]["comparisons"][str(a.get(semconv.ATTR_COMPARISON))] += point.value  # type: ignore[union-attr]
    return out


def merge(path: Path, deltas: dict[str, dict[str, Any]], phases: dict[str, str]) -> None:
    """Add ``deltas`` into the file under its lock (a corrupt file is kept aside, not zeroed)."""
    if not deltas and not phases:
        return
    with locked(path):
        try:
            document = read_json(path) or {}
        except CorruptStateError as exc:
            kept = move_aside(path)
            logger.error("metrics file %s was corrupt (%s); kept it at %s, starting a new one",
                         path, exc, kept)
            document = {}
        for name in {*GUIDE_SECTIONS, *deltas, *phases}:
            section = document.setdefault(section_name(name), empty_section())
            if name in phases:
                section["migration_phase"] = phases[name]
            delta = deltas.get(name)
            if delta is None:
                continue
            _merge_section(section, delta)
            section["updated_at"] = time.time()
        write_json_atomic(path, document)


def _merge_section(section: dict[str, Any], delta: dict[str, Any]) -> None:
    impls = section.setdefault("implementations", {})
    for (impl, role, outcome), value in delta["calls"].items():
        count = int(value)
        entry = impls.setdefault(impl, {"calls": 0, "errors": 0, "shadow_calls": 0})
        entry["calls"] += count
        if outcome == "error":
            entry["errors"] += count
        if role == "shadow":
            entry["shadow_calls"] += count
            continue
        if outcome == "error":
            section["errors"] += count
        if impl == "legacy":
            section["legacy_calls"] += count
        elif impl == "simplified":
            section["simplified_calls"] += count
        if outcome == "fallback":
            section["fallbacks"] += count
    for impl, hist in delta["hist"].items():
        entry = impls.setdefault(impl, {"calls": 0, "errors": 0, "shadow_calls": 0})
        stored = entry.get("histogram")
        if not stored or stored.get("bounds") != hist["bounds"]:
            stored = {"bounds": hist["bounds"], "counts": [0] * len(hist["counts"]),
                      "sum_seconds": 0.0}
        stored["counts"] = [a + b for a, b in zip(stored["counts"], hist["counts"], strict=True)]
        stored["sum_seconds"] += hist["sum"]
        entry["histogram"] = stored
        if hist["authoritative_count"]:
            mean_ms = hist["authoritative_sum"] / hist["authoritative_count"] * 1000
            section["performance_ms"] = [*section.get("performance_ms", []),
                                         round(mean_ms, 3)][-PERFORMANCE_SAMPLES:]
    comparisons = section.setdefault("comparisons", {})
    for result, value in delta["comparisons"].items():
        comparisons[result] = comparisons.get(result, 0) + int(value)


def read_metrics_file(path: Path | None = None) -> dict[str, Any]:
    """The metrics file's contents (``{}`` when absent).

    Raises:
        CorruptStateError: the file is not valid; it is left in place for inspection.
    """
    return read_json(path or default_path()) or {}


class FileHealthSource:
    """Health figures from the metrics file: cumulative since the file began, across processes."""

    name = "file"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def stats(self, migration: str, window: float) -> WindowStats:
        document = read_metrics_file(self.path)
        section = document.get(section_name(migration), {})
        impls = section.get("implementations", {})

        def side(impl: str) -> SideStats:
            entry = impls.get(impl, {})
            hist = entry.get("histogram")
            buckets: tuple[tuple[float, float], ...] = ()
            if hist:
                running, edges = 0.0, [*hist["bounds"], float("inf")]
                cumulative = []
                for edge, count in zip(edges, hist["counts"], strict=False):
                    running += count
                    cumulative.append((float(edge), running))
                buckets = tuple(cumulative)
            return SideStats(float(entry.get("calls", 0)), float(entry.get("errors", 0)), buckets)

        comparisons = section.get("comparisons", {})
        return WindowStats(
            migration, window, legacy=side("legacy"), simplified=side("simplified"),
            matches=float(comparisons.get("match", 0)),
            mismatches=float(comparisons.get("mismatch", 0)),
            source=f"file {self.path or default_path()} (since it began)",
        )

"""``~/.aurum/migration_metrics.json``: the migration guide's metrics file, kept from real counts.

A background writer merges what this process counted since its last flush into the file under an
inter-process lock and rewrites it atomically, so several processes add up and none loses another's
counts. The
guide's fields (``legacy_calls``, ``simplified_calls``, ``errors``, ``performance_ms``,
``migration_phase``) are kept per ``<name>_migration`` section, beside fuller figures (errors and
duration histogram per implementation, comparisons) that the ``file`` health source reads.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aurum_otel._files import locked, move_aside, read_json, write_json_atomic
from aurum_otel.aggregate import BOUNDS, Aggregator, CallKey, CallTotals, ComparisonKey
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


class MetricsFileWriter:
    """Merges the in-process aggregator's deltas into the metrics file every ``interval`` s.

    A daemon thread does the writing, off the call path; :meth:`stop` (called by
    ``TelemetryHandle.shutdown()`` and at interpreter exit) flushes what is left.
    """

    def __init__(self, path: Path | None = None, *, aggregator: Aggregator | None = None,
                 interval: float = 5.0) -> None:
        self._path = path
        self._aggregator = aggregator
        self.interval = interval
        self._flushed_calls: dict[CallKey, CallTotals] = {}
        self._flushed_comparisons: dict[ComparisonKey, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self._path or default_path()

    @property
    def aggregator(self) -> Aggregator:
        if self._aggregator is not None:
            return self._aggregator
        from aurum_otel.registry import get_registry

        return get_registry().instruments().aggregator

    def start(self) -> MetricsFileWriter:
        self._thread = threading.Thread(target=self._run, name="aurum-metrics-file", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        self.flush()
        atexit.unregister(self.stop)

    def flush(self) -> bool:
        """Write what was counted since the last flush; ``False`` when the file is unwritable."""
        with self._lock:
            calls = self.aggregator.calls()
            comparisons = self.aggregator.comparisons()
            deltas = _deltas(calls, self._flushed_calls, comparisons, self._flushed_comparisons)
            try:
                merge(self.path, deltas, _phases(deltas))
            except StateError as exc:
                logger.error("cannot update the metrics file: %s", exc)
                return False
            self._flushed_calls, self._flushed_comparisons = calls, comparisons
            return True


def _phases(deltas: dict[str, dict[str, Any]]) -> dict[str, str]:
    from aurum_otel.registry import get_registry

    registry = get_registry()
    return {name: registry.migration(name).resolved().state.phase.value
            for name in {*deltas, *registry.names()}}


def _deltas(
    calls: dict[CallKey, CallTotals], flushed: dict[CallKey, CallTotals],
    comparisons: dict[ComparisonKey, int], flushed_comparisons: dict[ComparisonKey, int],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "calls": defaultdict(float), "hist": {}, "comparisons": defaultdict(float),
    })
    bounds = list(BOUNDS)
    for key, totals in calls.items():
        before = flushed.get(key)
        count = totals.count - (before.count if before else 0)
        if count <= 0:
            continue
        name, _phase, impl, role, outcome = key
        seconds = totals.seconds - (before.seconds if before else 0.0)
        buckets = [a - (before.buckets[i] if before else 0) for i, a in enumerate(totals.buckets)]
        out[name]["calls"][(impl.value, role.value, outcome.value)] += count
        slot = out[name]["hist"].setdefault(impl.value, {
            "bounds": bounds, "counts": [0] * len(buckets), "sum": 0.0, "count": 0,
            "authoritative_sum": 0.0, "authoritative_count": 0,
        })
        slot["counts"] = [a + b for a, b in zip(slot["counts"], buckets, strict=True)]
        slot["sum"] += seconds
        slot["count"] += count
        if role.value == "authoritative":
            slot["authoritative_sum"] += seconds
            slot["authoritative_count"] += count
    for ckey, value in comparisons.items():
        count = value - flushed_comparisons.get(ckey, 0)
        if count > 0:
            out[ckey[0]]["comparisons"][ckey[2].value] += count
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

"""``~/.aurum/migration_metrics.json``: the migration guide's metrics file, kept from real counts.

A background writer merges what this process counted since its last flush into the file under an
inter-process lock and rewrites it atomically, so several processes add up and none loses another's
counts. The guide's fields (``legacy_calls``, ``simplified_calls``, ``errors``, ``performance_ms``,
``migration_phase``) are kept per ``<name>_migration`` section (a file in the guide's own schema is
adopted as it is), beside fuller figures (errors and duration histogram per implementation,
comparisons) and timestamped window buckets that the ``file`` health source reads
(:mod:`aurum_otel.health.file`).

The writer never dies: any error (a full disk, an unreadable file) is logged once, kept in
:attr:`MetricsFileWriter.last_error` for ``status``, and the flush is retried with backoff; what
was not written is kept for the next flush.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aurum_otel._files import locked, move_aside, read_json, write_json_atomic
from aurum_otel.errors import CorruptStateError
from aurum_otel.health.file import FILE_NAME, add_to_windows, default_path, section_name, step_label
from aurum_otel.phase import Phase
from aurum_otel.telemetry.aggregate import BOUNDS, Aggregator, CallKey, CallTotals, ComparisonKey

logger = logging.getLogger("aurum_otel.metrics_file")

__all__ = ["FILE_NAME", "MetricsFileWriter", "Steps", "empty_section", "merge"]

Steps = str | tuple[str, str, float]
"""A migration's phase, or its (phase, step label, step start): what a flush is tagged with."""
PERFORMANCE_SAMPLES = 100
GUIDE_SECTIONS = ("settings", "database")
MAX_BACKOFF = 60.0


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
    ``TelemetryHandle.shutdown()``, ``reset()`` and at interpreter exit) flushes what is left.
    The registry makes one writer per aggregator (``Registry.metrics_writer``) and owns it.

    Args:
        path: the file; default ``$AURUM_STATE_DIR/migration_metrics.json`` at each flush.
        aggregator: whose counts are written.
        phases: ``names -> {name: Steps}``, the phase (and step) of each migration at a flush
            (``Registry.phases``).

    State for ``status``: :attr:`last_error` (``None`` when the last flush wrote), :attr:`failures`
    (consecutive failed flushes), :attr:`last_success` (Unix time), :attr:`running`, or all of them
    as :meth:`state`.
    """

    def __init__(self, path: Path | None = None, *, aggregator: Aggregator,
                 phases: Callable[[set[str]], dict[str, Steps]],
                 interval: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self.aggregator = aggregator
        self.interval = interval
        self._clock = clock
        self.phases = phases
        self._flushed_calls: dict[CallKey, CallTotals] = {}
        self._flushed_comparisons: dict[ComparisonKey, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.last_success: float | None = None

    @property
    def path(self) -> Path:
        return self._path or default_path()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def state(self) -> dict[str, Any]:
        """What ``status`` shows: path, running, last error, consecutive failures, last write."""
        return {"path": str(self.path), "running": self.running, "last_error": self.last_error,
                "failures": self.failures, "last_success": self.last_success}

    def retarget(self, path: Path | None, *, interval: float | None = None) -> None:
        """Write to ``path`` (``None``: the default) from the next flush on."""
        with self._lock:
            self._path = path
            if interval is not None:
                self.interval = interval

    def start(self) -> MetricsFileWriter:
        """Start (or restart, after :meth:`stop`) the writing thread; a no-op when running."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="aurum-metrics-file", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def next_delay(self) -> float:
        """The wait before the next flush: the interval, doubled per consecutive failure."""
        if not self.failures:
            return self.interval
        return float(min(self.interval * 2 ** min(self.failures, 16), max(MAX_BACKOFF, self.interval)))

    def _run(self) -> None:
        while not self._stop.wait(self.next_delay()):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        self.flush()
        atexit.unregister(self.stop)

    def flush(self) -> bool:
        """Write what was counted since the last flush; ``False`` (and logged) when it failed."""
        with self._lock:
            try:
                calls = self.aggregator.calls()
                comparisons = self.aggregator.comparisons()
                deltas = _deltas(calls, self._flushed_calls, comparisons, self._flushed_comparisons)
                merge(self.path, deltas, self.phases({*deltas}), now=self._clock())
            except Exception as exc:  # the writer must outlive any error
                self._failed(exc)
                return False
            self._flushed_calls, self._flushed_comparisons = calls, comparisons
            if self.failures:
                logger.warning("metrics file %s written again after %d failed attempt(s)",
                               self.path, self.failures)
            self.failures, self.last_error, self.last_success = 0, None, self._clock()
            return True

    def _failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self.failures == 0:
            logger.error("cannot update the metrics file %s (%s); counts are kept and the write "
                         "retried with backoff", self.path, message)
        else:
            logger.debug("metrics file %s still not written (%s)", self.path, message)
        self.failures += 1
        self.last_error = message


def _deltas(
    calls: dict[CallKey, CallTotals], flushed: dict[CallKey, CallTotals],
    comparisons: dict[ComparisonKey, int], flushed_comparisons: dict[ComparisonKey, int],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "calls": defaultdict(float), "hist": {}, "comparisons": defaultdict(float), "steps": {},
    })
    bounds = list(BOUNDS)
    for key, totals in calls.items():
        before = flushed.get(key)
        count = totals.count - (before.count if before else 0)
        if count <= 0:
            continue
        name, phase, impl, role, outcome = key
        seconds = totals.seconds - (before.seconds if before else 0.0)
        buckets = [a - (before.buckets[i] if before else 0) for i, a in enumerate(totals.buckets)]
        out[name]["calls"][(impl.value, role.value, outcome.value)] += count
        step = out[name]["steps"].setdefault(phase.value, {"implementations": {},
                                                           "comparisons": {}})
        window = step["implementations"].setdefault(
            impl.value, {"calls": 0, "errors": 0, "counts": [0] * len(buckets)})
        window["calls"] += count
        window["errors"] += count if outcome.value == "error" else 0
        window["counts"] = [a + b for a, b in zip(window["counts"], buckets, strict=True)]
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
            name, phase, result = ckey
            out[name]["comparisons"][result.value] += count
            step = out[name]["steps"].setdefault(phase.value, {"implementations": {},
                                                               "comparisons": {}})
            step["comparisons"][result.value] = step["comparisons"].get(result.value, 0) + count
    return out


def merge(path: Path, deltas: dict[str, dict[str, Any]], phases: Mapping[str, Steps], *,
          now: float | None = None) -> None:
    """Add ``deltas`` into the file under its lock (a corrupt file is kept aside, not zeroed).

    ``phases``: ``name -> phase`` or ``name -> (phase, step label, step start)``, the step the
    window buckets of this flush are tagged with.
    """
    if not deltas and not phases:
        return
    now = time.time() if now is None else now
    with locked(path):
        try:
            document = read_json(path) or {}
        except CorruptStateError as exc:
            kept = move_aside(path)
            logger.error("metrics file %s was corrupt (%s); kept it at %s, starting a new one",
                         path, exc, kept)
            document = {}
        for name in {*GUIDE_SECTIONS, *deltas, *phases}:
            key = section_name(name)
            section = document.get(key)
            if not isinstance(section, dict):
                if section is not None:
                    logger.error("metrics file %s: section %s is not an object; starting it again",
                                 path, key)
                section = document[key] = empty_section()
            for field, default in empty_section().items():  # adopt the guide's own schema
                section.setdefault(field, default)
            current = phases.get(name)
            phase, step, start = (current, None, None) if isinstance(current, str) else (
                current if current else (None, None, None))
            if phase is not None:
                section["migration_phase"] = phase
            delta = deltas.get(name)
            if delta is None:
                continue
            _merge_section(section, delta)
            if "steps" not in delta:  # figures from elsewhere: in the step given, by time
                _window_from_totals(section, now, phase or "legacy", delta)
            for step_phase, increments in delta["steps"].items() if "steps" in delta else ():
                if step is not None and phase == step_phase:
                    add_to_windows(section, now, step, increments, BOUNDS, start)
                else:  # counted in an earlier phase, flushed after the change: not this step's
                    add_to_windows(section, now, step_label(Phase(step_phase)), increments,
                                   BOUNDS, 0.0)
            section["updated_at"] = now
        write_json_atomic(path, document)


def _window_from_totals(section: dict[str, Any], now: float, phase: str,
                        delta: Mapping[str, Any]) -> None:
    impls: dict[str, dict[str, Any]] = {}
    for (impl, _role, outcome), value in delta["calls"].items():
        slot = impls.setdefault(impl, {"calls": 0, "errors": 0})
        slot["calls"] += int(value)
        slot["errors"] += int(value) if outcome == "error" else 0
    bounds: list[float] = list(BOUNDS)
    for impl, hist in delta["hist"].items():
        bounds = list(hist["bounds"])
        impls.setdefault(impl, {"calls": 0, "errors": 0})["counts"] = list(hist["counts"])
    add_to_windows(section, now, phase, {"implementations": impls,
                                         "comparisons": dict(delta["comparisons"])}, bounds)


def _add(container: dict[str, Any], key: str, count: int) -> None:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is not None:
            logger.error("metrics file: %r was %r, not a count; counting again from 0", key, value)
        value = 0
    container[key] = value + count


def _merge_section(section: dict[str, Any], delta: dict[str, Any]) -> None:
    impls = section["implementations"]
    if not isinstance(impls, dict):
        impls = section["implementations"] = {}
    for (impl, role, outcome), value in delta["calls"].items():
        count = int(value)
        entry = impls.setdefault(impl, {"calls": 0, "errors": 0, "shadow_calls": 0})
        _add(entry, "calls", count)
        _add(entry, "errors", count if outcome == "error" else 0)
        if role == "shadow":
            _add(entry, "shadow_calls", count)
            continue
        _add(section, "errors", count if outcome == "error" else 0)
        if impl in ("legacy", "simplified"):
            _add(section, f"{impl}_calls", count)
        _add(section, "fallbacks", count if outcome == "fallback" else 0)
    for impl, hist in delta["hist"].items():
        entry = impls.setdefault(impl, {"calls": 0, "errors": 0, "shadow_calls": 0})
        stored = entry.get("histogram")
        if not isinstance(stored, dict) or stored.get("bounds") != hist["bounds"]:
            stored = {"bounds": hist["bounds"], "counts": [0] * len(hist["counts"]),
                      "sum_seconds": 0.0}
        stored["counts"] = [a + b for a, b in zip(stored["counts"], hist["counts"], strict=True)]
        stored["sum_seconds"] += hist["sum"]
        entry["histogram"] = stored
        if hist["authoritative_count"]:
            mean_ms = hist["authoritative_sum"] / hist["authoritative_count"] * 1000
            samples = section.get("performance_ms")
            samples = samples if isinstance(samples, list) else []
            section["performance_ms"] = [*samples, round(mean_ms, 3)][-PERFORMANCE_SAMPLES:]
    comparisons = section["comparisons"]
    if not isinstance(comparisons, dict):
        comparisons = section["comparisons"] = {}
    for result, value in delta["comparisons"].items():
        _add(comparisons, result, int(value))

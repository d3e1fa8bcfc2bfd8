"""Health from the metrics file: real windows kept in timestamped buckets.

The writer (:mod:`aurum_otel.guide.metrics_file`) adds each flush's increments to a bucket of
``BUCKET_SECONDS`` wall-clock seconds, tagged with the migration's step (phase, and in hybrid the
percent and compare share) when they were counted. A window's figures are the sum of the buckets
that start within it, like PromQL's ``increase()`` over the same span, and a new step is judged
only on data counted since it began (the store's ``updated_at``): a rollback, a fix and clean
calls are never judged on the bad release's errors. Buckets older than ``RETENTION`` seconds are
dropped, so the file stays bounded. ``window <= 0`` asks for the cumulative figures since the file
began (what ``status`` shows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aurum_otel._files import read_json
from aurum_otel.flags import GlobalFlags
from aurum_otel.health.stats import ConfiguredSplit, SideStats, SplitOf, WindowStats
from aurum_otel.phase import Phase, Rollout

FILE_NAME = "migration_metrics.json"
BUCKET_SECONDS = 10.0
RETENTION = 3600.0
MAX_BUCKETS = 2 * int(RETENTION / BUCKET_SECONDS)  # room for a step change in every bucket


def default_path(state_dir: Path | None = None) -> Path:
    """The metrics file in ``state_dir`` (default: ``$AURUM_STATE_DIR``, read now)."""
    if state_dir is None:
        state_dir = GlobalFlags.from_env(strict=False).state_dir
    return state_dir / FILE_NAME


def section_name(migration: str) -> str:
    return f"{migration}_migration"


def read_metrics_file(path: Path | None = None) -> dict[str, Any]:
    """The metrics file's contents (``{}`` when absent).

    Raises:
        CorruptStateError: the file is not valid; it is left in place for inspection.
    """
    return read_json(path or default_path()) or {}


def step_label(phase: Phase | str, rollout: Rollout | None = None) -> str:
    """The step a bucket's figures belong to: the phase, and in hybrid the rollout shares."""
    value = Phase(phase).value
    if value == Phase.HYBRID.value and rollout is not None:
        return f"{value} {rollout.percent:g}%/{rollout.compare:g}%"
    return value


def split_of_step(label: str, since: float | None = None) -> ConfiguredSplit | None:
    """The configured split a :func:`step_label` stands for (``None`` for one it cannot read):
    legacy serves 0 %, simplified 100 %, ``hybrid P%/C%`` P %."""
    phase, _, shares = label.partition(" ")
    if phase == Phase.LEGACY.value:
        percent = 0.0
    elif phase == Phase.SIMPLIFIED.value:
        percent = 100.0
    else:
        try:
            percent = float(shares.partition("%")[0]) if phase == Phase.HYBRID.value else -1.0
        except ValueError:
            return None
        if not 0 <= percent <= 100:
            return None
    return ConfiguredSplit(percent, since or None, label)


def split_from_steps(step_of: Callable[[str], tuple[str, float] | None]) -> SplitOf:
    """A :data:`~aurum_otel.health.stats.SplitOf` from a ``name -> (step label, step start)``
    lookup such as ``Registry.step_of``: what a health source is given to judge the split."""
    def split_of(migration: str) -> ConfiguredSplit | None:
        step = step_of(migration)
        return None if step is None else split_of_step(*step)
    return split_of


def bucket_start(now: float, width: float = BUCKET_SECONDS) -> float:
    return math.floor(now / width) * width


def add_to_windows(section: dict[str, Any], now: float, step: str,
                   increments: Mapping[str, Any], bounds: Sequence[float],
                   step_start: float | None = None) -> None:
    """Add one flush's ``increments`` to the bucket of ``now`` and ``step``; drop expired buckets.

    ``step_start`` (the store's ``updated_at`` of the step) tells two runs of the same step
    apart, e.g. simplified before and after a rollback.

    ``increments``: ``{"implementations": {impl: {"calls", "errors", "counts"}},
    "comparisons": {result: n}}``, counts per histogram bucket (not cumulative).
    """
    buckets = section.get("windows")
    if (not isinstance(buckets, list) or section.get("window_bounds") != list(bounds)
            or section.get("bucket_seconds") != BUCKET_SECONDS):
        buckets = []
    section["window_bounds"] = list(bounds)
    section["bucket_seconds"] = BUCKET_SECONDS
    start = bucket_start(now)
    bucket = next((b for b in buckets if isinstance(b, dict) and b.get("t") == start
                   and b.get("step") == step and b.get("step_start") == step_start), None)
    if bucket is None:
        bucket = {"t": start, "step": step, "step_start": step_start, "implementations": {},
                  "comparisons": {}}
        buckets.append(bucket)
    for impl, figures in increments.get("implementations", {}).items():
        slot = bucket["implementations"].setdefault(
            impl, {"calls": 0, "errors": 0, "counts": [0] * (len(bounds) + 1)})
        slot["calls"] += int(figures.get("calls", 0))
        slot["errors"] += int(figures.get("errors", 0))
        counts = list(figures.get("counts") or [0] * len(slot["counts"]))
        slot["counts"] = [a + int(b) for a, b in zip(slot["counts"], counts, strict=True)]
    for result, count in increments.get("comparisons", {}).items():
        bucket["comparisons"][result] = bucket["comparisons"].get(result, 0) + int(count)
    horizon = start - RETENTION
    kept = [b for b in buckets if isinstance(b, dict) and _number(b.get("t")) > horizon]
    kept.sort(key=lambda b: float(b["t"]))
    section["windows"] = kept[-MAX_BUCKETS:]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return -math.inf
    return float(value)


def select_buckets(buckets: Iterable[Any], *, now: float, window: float,
                   since: float | None = None, step: tuple[str, float] | None = None,
                   width: float = BUCKET_SECONDS) -> list[dict[str, Any]]:
    """The buckets a window of ``window`` seconds ending at ``now`` covers.

    A bucket counts when it starts within the window; with ``since``, only when it ends after
    ``since``; with ``step`` (label and start), only when it was counted in that very step (a
    bucket written without a step start, by :func:`~aurum_otel.guide.metrics_file.merge` given bare
    phases, only when it ends after the step's start).
    """
    chosen = []
    for bucket in buckets:
        if not isinstance(bucket, dict):
            continue
        start = _number(bucket.get("t"))
        if start < now - window or start > now:
            continue
        if since is not None and start + width <= since:
            continue
        if step is not None:
            if bucket.get("step_start") is None:  # written without a step: by time only
                if start + width <= step[1]:
                    continue
            elif (bucket.get("step"), bucket.get("step_start")) != step:
                continue
        chosen.append(bucket)
    return chosen


def _cumulative(bounds: Sequence[float], counts: Sequence[float]) -> tuple[tuple[float, float], ...]:
    running, out = 0.0, []
    for edge, count in zip([*bounds, math.inf], counts, strict=False):
        running += count
        out.append((float(edge), running))
    return tuple(out) if out and running > 0 else ()


class FileHealthSource:
    """Health figures from the metrics file, over real windows, across processes.

    Args:
        path: the metrics file; default ``default_path()`` at each evaluation.
        clock: wall-clock seconds (the file is shared by processes), injected for tests.
        step_of: ``name -> (step label, step start)`` (``Registry.step_of`` gives the resolved
            phase and the store's ``updated_at``); ``None``, or ``None`` from it, judges the
            whole window.
        default_path: where the file is when ``path`` is not given (default: in
            ``$AURUM_STATE_DIR``).
    """

    name = "file"

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time,
                 step_of: Callable[[str], tuple[str, float] | None] | None = None,
                 default_path: Callable[[], Path] = default_path) -> None:
        self.path = path
        self._default_path = default_path
        self._clock = clock
        self._step_of = step_of or _whole_window

    def stats(self, migration: str, window: float, *, since: float | None = None) -> WindowStats:
        """``migration``'s figures over the last ``window`` seconds of its current step.

        ``since`` (Unix time) narrows the window further; ``window <= 0``: since the file began.
        """
        where = self.path or self._default_path()
        document = read_metrics_file(where)
        section = document.get(section_name(migration), {})
        if not isinstance(section, dict):
            section = {}
        if window <= 0:
            return self._cumulative(migration, window, section, f"file {where} (since it began)")
        now = self._clock()
        step = self._step_of(migration)
        bounds = section.get("window_bounds") or []
        chosen = select_buckets(section.get("windows") or [], now=now, window=window,
                                since=since, step=step)
        calls: dict[str, float] = {}
        errors: dict[str, float] = {}
        counts: dict[str, list[float]] = {}
        comparisons: dict[str, float] = {}
        for bucket in chosen:
            for impl, figures in (bucket.get("implementations") or {}).items():
                calls[impl] = calls.get(impl, 0.0) + _figure(figures.get("calls"))
                errors[impl] = errors.get(impl, 0.0) + _figure(figures.get("errors"))
                slot = counts.setdefault(impl, [0.0] * (len(bounds) + 1))
                for i, count in enumerate((figures.get("counts") or [])[: len(slot)]):
                    slot[i] += _figure(count)
            for result, count in (bucket.get("comparisons") or {}).items():
                comparisons[result] = comparisons.get(result, 0.0) + _figure(count)

        def side(impl: str) -> SideStats:
            return SideStats(calls.get(impl, 0.0), errors.get(impl, 0.0),
                             _cumulative(bounds, counts.get(impl, [])))

        scope = f"last {window:g} s in {BUCKET_SECONDS:g} s buckets"
        if step is not None:
            scope += f", step {step[0]} since {_iso(step[1])}"
        if since is not None:
            scope += f", from {_iso(since)}"
        return WindowStats(
            migration, window, legacy=side("legacy"), simplified=side("simplified"),
            matches=comparisons.get("match", 0.0), mismatches=comparisons.get("mismatch", 0.0),
            source=f"file {where} ({scope})",
        )

    def _cumulative(self, migration: str, window: float, section: Mapping[str, Any],
                    source: str) -> WindowStats:
        impls = section.get("implementations") or {}

        def side(impl: str) -> SideStats:
            entry = impls.get(impl) or {}
            hist = entry.get("histogram") or {}
            return SideStats(_figure(entry.get("calls")), _figure(entry.get("errors")),
                             _cumulative(hist.get("bounds") or [],
                                         [_figure(c) for c in hist.get("counts") or []]))

        comparisons = section.get("comparisons") or {}
        return WindowStats(
            migration, window, legacy=side("legacy"), simplified=side("simplified"),
            matches=_figure(comparisons.get("match")),
            mismatches=_figure(comparisons.get("mismatch")), source=source,
        )


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _figure(value: Any) -> float:
    """A count read from the file; anything that is not a finite count is NaN (inconclusive)."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) and value >= 0 else math.nan


def _whole_window(migration: str) -> None:
    return None

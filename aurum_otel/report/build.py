"""Gather a report's figures, transitions and traces, and render the page."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.guide.file_source import read_metrics_file, section_name
from aurum_otel.report.filedata import gather_file
from aurum_otel.report.jaeger import JaegerClient, TraceRecord, choose_traces
from aurum_otel.report.model import MigrationData
from aurum_otel.report.page import render
from aurum_otel.report.promdata import gather_prometheus
from aurum_otel.report.traceview import traces_section
from aurum_otel.store import PhaseStore, Transition

SOURCES = ("file", "prometheus")
MAX_PERIOD = 3600.0  # the metrics file keeps an hour of buckets
DEFAULT_PERIOD = 600.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_since(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``2d`` as seconds.

    Raises:
        ConfigurationError: anything else, or zero.
    """
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError("--since", text, "a positive duration such as 90s, 15m, 1h or 2d")
    return seconds


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows and where its figures come from.

    Attributes:
        names: the migrations, in order.
        source: ``file`` (the metrics file) or ``prometheus`` (range queries).
        since: seconds before now; ``None``: from the first data or transition (at most an hour).
        traces: how many latest mismatches and how many slowest calls per migration (0: none).
        trace_ids: traces asked for by id.
        jaeger_url / jaeger_ui: the query API; the UI the links point at (``None``: no links).
    """

    names: tuple[str, ...]
    source: str = "file"
    since: float | None = None
    prometheus_url: str | None = None
    jaeger_url: str | None = None
    jaeger_ui: str | None = None
    traces: int = 2
    trace_ids: tuple[str, ...] = ()
    metrics_path: Path | None = None
    refresh: float | None = None
    services: tuple[str, ...] | None = None


def histories(store: PhaseStore, names: Sequence[str]) -> dict[str, Sequence[Transition]]:
    """Each migration's transitions as the store keeps them (empty when it has none)."""
    snapshot = store.snapshot()
    out: dict[str, Sequence[Transition]] = {}
    for name in names:
        record = snapshot.get(name)
        out[name] = tuple(record.history) if record is not None else ()
    return out


def _first_data(options: ReportOptions, changes: Mapping[str, Sequence[Transition]],
                now: float) -> float:
    moments = [t.at for ts in changes.values() for t in ts if t.at >= now - MAX_PERIOD]
    if options.source == "file":
        try:
            document = read_metrics_file(options.metrics_path)
        except (AurumOtelError, OSError):
            document = {}
        for name in options.names:
            section = document.get(section_name(name))
            for bucket in (section.get("windows") or []) if isinstance(section, dict) else []:
                at = bucket.get("t") if isinstance(bucket, dict) else None
                if isinstance(at, int | float) and not isinstance(at, bool) and at >= now - MAX_PERIOD:
                    moments.append(float(at))
    return min(moments) - 5.0 if moments else now - DEFAULT_PERIOD


def gather(options: ReportOptions, store: PhaseStore, *, now: float | None = None
           ) -> list[MigrationData]:
    """Every migration's figures over the period."""
    end = time.time() if now is None else now
    changes = histories(store, options.names)
    start = end - options.since if options.since is not None else _first_data(options, changes, end)
    if options.source == "prometheus":
        return gather_prometheus(options.names, changes, start=start, end=end,
                                 url=options.prometheus_url)
    if options.source == "file":
        return gather_file(options.names, changes, start=start, end=end, path=options.metrics_path)
    raise ConfigurationError("--source", options.source, SOURCES)


def gather_traces(options: ReportOptions, lookback: float,
                  client: JaegerClient | None = None) -> tuple[list[TraceRecord], str | None]:
    """The traces to draw, and why there are none when Jaeger could not be read."""
    if not options.traces and not options.trace_ids:
        return [], None
    client = client or JaegerClient(options.jaeger_url)
    chosen: dict[str, TraceRecord] = {}
    try:
        for i, name in enumerate(options.names or ("",)):
            for trace in choose_traces(client, name, ids=options.trace_ids if i == 0 else (),
                                       mismatches=options.traces, slowest=options.traces,
                                       services=options.services,
                                       lookback=f"{max(int(lookback), 60)}s"):
                chosen.setdefault(trace.trace_id, trace)
    except AurumOtelError as exc:
        return list(chosen.values()), str(exc)
    return list(chosen.values()), None


def build_report(options: ReportOptions, store: PhaseStore, *, now: float | None = None,
                 jaeger: JaegerClient | None = None,
                 gather_figures: Callable[..., list[MigrationData]] | None = None) -> str:
    """The report page (HTML text) for ``options``."""
    moment = time.time() if now is None else now
    migrations = (gather_figures or gather)(options, store, now=moment)
    lookback = max((moment - m.start for m in migrations), default=DEFAULT_PERIOD)
    traces, problem = gather_traces(options, lookback, jaeger)
    part = traces_section(traces, jaeger_ui=options.jaeger_ui, problem=problem) if (
        options.traces or options.trace_ids) else ""
    return render(migrations, traces=part, refresh=options.refresh, generated=moment)


def write_report(path: Path, options: ReportOptions, store: PhaseStore, *,
                 now: float | None = None, jaeger: JaegerClient | None = None) -> Path:
    """Write the report to ``path`` (atomically: a reader never sees half a page)."""
    html = build_report(options, store, now=now, jaeger=jaeger)
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)
    return path

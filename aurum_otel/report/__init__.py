"""See the migration: a self-contained HTML report and a live page, with plots and traces.

Plots are hand-written SVG (no dependency, nothing fetched); figures come from the metrics file or
Prometheus range queries; traces from Jaeger's HTTP API.
"""

from aurum_otel.report.build import (
    SOURCES,
    ReportOptions,
    build_report,
    gather,
    parse_since,
    write_report,
)
from aurum_otel.report.jaeger import JaegerClient, TraceRecord, choose_traces, parse_trace
from aurum_otel.report.model import COLOURS, MigrationData
from aurum_otel.report.promdata import ReportSourceError
from aurum_otel.report.serve import LiveServer

__all__ = [
    "COLOURS",
    "SOURCES",
    "JaegerClient",
    "LiveServer",
    "MigrationData",
    "ReportOptions",
    "ReportSourceError",
    "TraceRecord",
    "build_report",
    "choose_traces",
    "gather",
    "parse_since",
    "parse_trace",
    "write_report",
]

"""Traces of chosen calls from Jaeger's HTTP query API (``/api/traces``), as plain span records.

Which calls: by trace id, the latest mismatches (shadow spans whose comparison is ``mismatch``)
and the slowest routed calls of a migration, searched over every service Jaeger knows (or the
ones named).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from aurum_otel import semconv
from aurum_otel.report.promdata import ReportSourceError

DEFAULT_URL = "http://127.0.0.1:16686"
MIGRATE_PREFIX = semconv.SPAN_MIGRATE.split("{", 1)[0]
SHADOW_PREFIX = semconv.SPAN_SHADOW.split("{", 1)[0]


def jaeger_url(url: str | None = None) -> str:
    return (url or os.environ.get("AURUM_JAEGER_URL") or DEFAULT_URL).rstrip("/")


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One span: times in microseconds since the epoch, attributes as text."""

    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_us: int
    duration_us: int
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True, slots=True)
class TraceRecord:
    trace_id: str
    spans: tuple[SpanRecord, ...]
    why: str = ""  # why it was chosen: "mismatch", "slowest", "asked for"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_trace(data: Mapping[str, Any], why: str = "") -> TraceRecord:
    """A trace of Jaeger's JSON model (``{"traceID", "spans", "processes"}``)."""
    processes = data.get("processes") or {}
    spans = []
    for raw in data.get("spans") or []:
        parent = next((r.get("spanID") for r in raw.get("references") or []
                       if r.get("refType") == "CHILD_OF"), None)
        process = processes.get(raw.get("processID"), {})
        spans.append(SpanRecord(
            str(raw.get("spanID")), parent, str(raw.get("operationName")),
            str(process.get("serviceName", "")), int(raw.get("startTime", 0)),
            int(raw.get("duration", 0)),
            {str(t.get("key")): _text(t.get("value")) for t in raw.get("tags") or []},
        ))
    spans.sort(key=lambda s: (s.start_us, s.name))
    return TraceRecord(str(data.get("traceID")), tuple(spans), why)


class JaegerClient:
    """Jaeger's query API; every failure is a :class:`ReportSourceError` that says what to do."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self.url = jaeger_url(url)
        self.timeout = timeout
        self.session = session or requests.Session()

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ReportSourceError(
                f"cannot read Jaeger at {self.url} ({type(exc).__name__}: {exc}); start it or "
                "point AURUM_JAEGER_URL / --jaeger-url at it, or leave traces out (--traces 0)"
            ) from None
        if response.status_code == 404:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            raise ReportSourceError(f"Jaeger at {self.url} answered {path} with HTTP "
                                    f"{response.status_code}: {response.text[:200]}")
        return body.get("data")

    def services(self) -> list[str]:
        data = self._get("/api/services")
        return sorted(s for s in data or [] if isinstance(s, str) and s != "jaeger")

    def trace(self, trace_id: str, why: str = "asked for") -> TraceRecord:
        data = self._get(f"/api/traces/{trace_id}")
        if not data:
            raise ReportSourceError(f"Jaeger at {self.url} has no trace {trace_id!r}; check the id "
                                    "(32 hex digits) and that it was exported within retention")
        return parse_trace(data[0], why)

    def search(self, service: str, operation: str, *, tags: Mapping[str, str] | None = None,
               limit: int = 20, lookback: str = "1h") -> list[TraceRecord]:
        params: dict[str, Any] = {"service": service, "operation": operation, "limit": limit,
                                  "lookback": lookback}
        if tags:
            params["tags"] = json.dumps(dict(tags))
        return [parse_trace(t) for t in self._get("/api/traces", params) or []]


def choose_traces(client: JaegerClient, migration: str, *, ids: Sequence[str] = (),
                  mismatches: int = 2, slowest: int = 2, services: Iterable[str] | None = None,
                  lookback: str = "1h") -> list[TraceRecord]:
    """The traces a report shows for ``migration``: the ids asked for, then the latest
    mismatches, then the slowest calls (no trace twice)."""
    chosen: dict[str, TraceRecord] = {}
    for trace_id in ids:
        chosen.setdefault(trace_id, client.trace(trace_id))
    names = list(services) if services is not None else client.services()
    found_mismatches: list[TraceRecord] = []
    calls: list[TraceRecord] = []
    for service in names:
        if mismatches:
            found_mismatches += client.search(
                service, semconv.SPAN_SHADOW.format(name=migration), lookback=lookback,
                tags={semconv.ATTR_COMPARISON: "mismatch"}, limit=max(mismatches, 5))
        if slowest:
            calls += client.search(service, semconv.SPAN_MIGRATE.format(name=migration),
                                   lookback=lookback, limit=50)
    found_mismatches.sort(key=lambda t: -max((s.start_us for s in t.spans), default=0))
    for trace in found_mismatches[:mismatches]:
        chosen.setdefault(trace.trace_id, TraceRecord(trace.trace_id, trace.spans, "latest mismatch"))
    calls.sort(key=lambda t: -call_duration(t, migration))
    for trace in [t for t in calls if t.trace_id not in chosen][:slowest]:
        chosen[trace.trace_id] = TraceRecord(trace.trace_id, trace.spans, "slowest")
    return list(chosen.values())


def call_duration(trace: TraceRecord, migration: str | None = None) -> int:
    spans = [s for s in trace.spans if s.name.startswith(MIGRATE_PREFIX)
             and (migration is None or s.name == semconv.SPAN_MIGRATE.format(name=migration))]
    return max((s.duration_us for s in spans), default=0)

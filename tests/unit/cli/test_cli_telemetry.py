"""CLI transitions reach OpenTelemetry when the standard OTEL_* variables name an endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aurum_otel import semconv, testing
from aurum_otel.cli import cli, control
from aurum_otel.health.stats import SideStats, WindowStats
from aurum_otel.phase import Phase, Rollout
from aurum_otel.setup import TelemetryHandle
from aurum_otel.store import FileStore


class Exported:
    """What a fake setup_telemetry() exported, read when the CLI shuts telemetry down."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.calls: list[dict[str, Any]] = []
        self.transitions: list[dict[str, Any]] = []
        self.flushed = False

    def setup(self, service_name: str | None = None, **options: Any) -> TelemetryHandle:
        self.calls.append({"service_name": service_name, **options})
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        meter_provider = MeterProvider(metric_readers=[self.reader])
        exported = self

        class Handle(TelemetryHandle):
            def shutdown(self) -> None:
                data = exported.reader.get_metrics_data()
                for metric in (m for rm in data.resource_metrics for sm in rm.scope_metrics
                               for m in sm.metrics if m.name == semconv.METRIC_TRANSITIONS):
                    exported.transitions += [{**p.attributes, "value": p.value}
                                             for p in metric.data.data_points]
                exported.flushed = True
                super().shutdown()

        return Handle(tracer_provider, meter_provider)


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Exported:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    fake = Exported()
    monkeypatch.setattr(control, "setup_telemetry", fake.setup)
    return fake


def invoke(*args: str, env: dict[str, str]) -> Any:
    testing.reset()
    return CliRunner().invoke(cli, list(args), env=env)


OTLP = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SERVICE_NAME": "ops"}


@pytest.mark.parametrize("variable", control.OTLP_ENDPOINT_VARIABLES)
def test_advance_exports_its_transition_as_a_span_and_a_count(
    exported: Exported, variable: str
) -> None:
    result = invoke("advance", "settings", "--reason", "ticket 42", "--actor", "alice",
                    env={variable: "http://127.0.0.1:4317", "OTEL_SERVICE_NAME": "ops"})
    assert result.exit_code == 0, result.output
    assert exported.calls == [{"service_name": "ops", "set_global": False, "health": False,
                               "metrics_file": False}]
    assert exported.flushed
    (span,) = exported.spans.get_finished_spans()
    assert span.name == "transition settings"
    (event,) = span.events
    assert event.name == semconv.EVENT_TRANSITION
    assert {k: event.attributes[k] for k in (semconv.ATTR_NAME, semconv.ATTR_FROM, semconv.ATTR_TO,
                                             semconv.ATTR_ACTOR, semconv.ATTR_REASON)} == {
        semconv.ATTR_NAME: "settings", semconv.ATTR_FROM: "legacy", semconv.ATTR_TO: "hybrid",
        semconv.ATTR_ACTOR: "alice", semconv.ATTR_REASON: "ticket 42"}
    assert exported.transitions == [{semconv.ATTR_NAME: "settings", semconv.ATTR_FROM: "legacy",
                                     semconv.ATTR_TO: "hybrid", semconv.ATTR_REASON: "manual",
                                     "value": 1}]


def test_rollback_exports_its_transition(exported: Exported, tmp_path: Path) -> None:
    FileStore.in_dir(tmp_path).transition("database", Phase.HYBRID, Rollout(percent=50),
                                          actor="t", reason="t")
    result = invoke("rollback", "database", "--reason", "p95", env=OTLP)
    assert result.exit_code == 0, result.output
    (span,) = exported.spans.get_finished_spans()
    assert span.name == "transition database"
    assert span.events[0].attributes[semconv.ATTR_TO] == "legacy"
    assert [(t[semconv.ATTR_TO], t["value"]) for t in exported.transitions] == [("legacy", 1)]


class Healthy:
    """A health source where both sides served 500 calls without an error."""

    name = "test"

    def stats(self, migration: str, window: float) -> WindowStats:
        return WindowStats(migration, window, legacy=SideStats(500, 0), simplified=SideStats(500, 0),
                           source="test")


def test_watch_exports_its_automatic_steps(exported: Exported, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    FileStore.in_dir(tmp_path).transition("settings", Phase.HYBRID, Rollout(percent=0, compare=100),
                                          actor="t", reason="t")
    monkeypatch.setattr(control, "make_source", lambda kind, url: Healthy())
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - error_rate: {}\n")
    result = invoke("watch", "settings", "--bake", "0", "--interval", "0.1", "--max-ticks", "2",
                    "--rules", str(rules), env=OTLP)
    assert result.exit_code == 0, result.output
    assert [s.name for s in exported.spans.get_finished_spans()] == ["transition settings"] * 2
    assert sum(t["value"] for t in exported.transitions if t[semconv.ATTR_REASON] == "plan") == 2


def test_without_an_endpoint_nothing_is_set_up(exported: Exported) -> None:
    assert invoke("advance", "settings", env={}).exit_code == 0
    assert invoke("advance", "settings", env={**OTLP, "OTEL_SDK_DISABLED": "true"}).exit_code == 0
    assert exported.calls == []

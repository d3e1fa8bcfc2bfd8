"""Exemplars end to end: a comparisons point in Prometheus names a trace that Jaeger returns.

app -> OTLP -> collector (prometheus exporter, OpenMetrics) -> Prometheus (exemplar storage)
-> ``/api/v1/query_exemplars`` -> trace id -> Jaeger ``/api/traces/<id>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from aurum_otel import FileStore, Phase, Rollout
from tests.integration.conftest import ROOT, AppProcess, Pipeline, wait_for

pytestmark = pytest.mark.integration

METRIC = "aurum_migration_comparisons_total"
StartApp = Callable[..., AppProcess]

# A service calling the migration inside its own request span (what a web framework's
# instrumentation does), so the shadow's comparison is recorded under a sampled span.
DRIVER = textwrap.dedent("""
    import sys
    from opentelemetry import trace
    from aurum_otel import get_registry, migrated, setup_telemetry

    service, name = sys.argv[1], sys.argv[2]
    handle = setup_telemetry(service_name=service, export_interval_millis=1000)

    @migrated(name)
    def lookup(i):
        return {"i": i}

    @lookup.simplified
    def _lookup_simplified(i):
        return {"i": i + 1}  # every comparison is a mismatch

    tracer = trace.get_tracer("driver")
    for i in range(5):
        with tracer.start_as_current_span("request"):
            lookup(i)
    assert get_registry().shadows.join(10)
    handle.force_flush(10_000)
    handle.shutdown()
""")


def set_phase(state_dir: Path, migration: str) -> None:
    """A pure shadow run: legacy serves every call, simplified runs beside it on each."""
    state_dir.mkdir(parents=True, exist_ok=True)
    FileStore.in_dir(state_dir).transition(migration, Phase.HYBRID, Rollout(percent=0, compare=100),
                                           actor="exemplar-test", reason="test set-up")


def exemplars(pipeline: Pipeline, migration: str, since: float) -> list[dict[str, Any]] | None:
    """The exemplars Prometheus holds for the migration's mismatch series, or None yet."""
    query = f'{METRIC}{{aurum_migration_name="{migration}",aurum_migration_comparison="mismatch"}}'
    response = pipeline.prometheus.session.get(
        f"{pipeline.prometheus.url}/api/v1/query_exemplars",
        params={"query": query, "start": f"{since:.3f}", "end": f"{time.time() + 60:.3f}"},
        timeout=10)
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", (
        f"query_exemplars failed: HTTP {response.status_code} {body.get('error')} (is Prometheus "
        "running with --enable-feature=exemplar-storage? bash scripts/servers.sh stop prometheus "
        "&& bash scripts/servers.sh start prometheus)")
    found = [e for series in body["data"] for e in series["exemplars"]]
    return found or None


def jaeger_trace(pipeline: Pipeline, trace_id: str) -> dict[str, Any] | None:
    response = requests.get(f"{pipeline.jaeger.url}/api/traces/{trace_id}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    data = response.json().get("data") or []
    return data[0] if data else None


def follow(pipeline: Pipeline, migration: str, since: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the newest exemplar, the Jaeger trace it names), waiting for both."""
    found, seconds = wait_for(lambda: exemplars(pipeline, migration, since), timeout=45,
                              interval=0.5, what=f"an exemplar on {METRIC} of {migration}")
    exemplar = max(found, key=lambda e: float(e["timestamp"]))
    trace_id = exemplar["labels"]["trace_id"]
    print(f"\n[exemplar] {METRIC} of {migration}: trace_id={trace_id} "
          f"span_id={exemplar['labels'].get('span_id')} after {seconds:.2f} s")
    trace, _ = wait_for(lambda: jaeger_trace(pipeline, trace_id), timeout=30,
                        what=f"trace {trace_id} in Jaeger")
    return exemplar, trace


def spans_by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["operationName"]: span for span in trace["spans"]}


def comparison_of(span: dict[str, Any]) -> Any:
    return {t["key"]: t["value"] for t in span.get("tags", [])}.get("aurum.migration.comparison")


def test_a_mismatch_under_a_request_span_links_to_its_trace(
        pipeline: Pipeline, unique: str, tmp_path: Path) -> None:
    migration, service = f"e2e_exemplar_req_{unique}", f"aurum-e2e-exemplar-req-{unique}"
    state = tmp_path / "state"
    set_phase(state, migration)
    since = time.time() - 5
    env = {k: v for k, v in pipeline.server_env.items() if not k.startswith(("AURUM_", "OTEL_"))}
    env.update({"AURUM_STATE_DIR": str(state), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": pipeline.otlp_endpoint,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))})
    done = subprocess.run([sys.executable, "-c", DRIVER, service, migration], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    exemplar, trace = follow(pipeline, migration, since)

    spans = spans_by_name(trace)
    assert {"request", f"migrate {migration}", f"shadow {migration}"} <= set(spans), set(spans)
    assert comparison_of(spans[f"shadow {migration}"]) == "mismatch"
    assert exemplar["labels"]["span_id"] in {s["spanID"] for s in trace["spans"]}
    assert float(exemplar["value"]) >= 1


def test_a_mismatch_links_to_the_trace_of_its_call(pipeline: Pipeline, start_app: StartApp,
                                                   unique: str, tmp_path: Path) -> None:
    """No span of the caller's own: the shadow run must hand its span to the counter."""
    migration, service = f"e2e_exemplar_{unique}", f"aurum-e2e-exemplar-{unique}"
    state = tmp_path / "state"
    set_phase(state, migration)
    since = time.time() - 5
    app: AppProcess = start_app(service=service, migration=migration, state_dir=state)
    app.send("config", mismatch_rate=1.0)
    assert app.send("calls", n=5)["ok"] == 5
    assert app.send("flush")["shadows_done"]

    exemplar, trace = follow(pipeline, migration, since)

    spans = spans_by_name(trace)
    assert {f"migrate {migration}", f"shadow {migration}"} <= set(spans), set(spans)
    assert comparison_of(spans[f"shadow {migration}"]) == "mismatch"
    assert exemplar["labels"]["span_id"] in {s["spanID"] for s in trace["spans"]}

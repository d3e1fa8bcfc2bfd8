"""`aurum-migrate advance/rollback` with OTEL_EXPORTER_OTLP_ENDPOINT set: the audit trail reaches
the real collector, Jaeger (the transition spans) and Prometheus (the transitions counter)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aurum_otel import semconv
from tests.integration.conftest import Pipeline, wait_for


def migrate(pipeline: Pipeline, service: str, state: Path, *args: str
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AURUM_", "OTEL_"))}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": pipeline.otlp_endpoint,
                "OTEL_SERVICE_NAME": service, "AURUM_STATE_DIR": str(state), "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "aurum_otel.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_transitions_reach_jaeger_and_prometheus(pipeline: Pipeline, unique: str,
                                                     tmp_path: Path) -> None:
    service = f"aurum-migrate-{unique}"
    started = time.monotonic()
    advanced = migrate(pipeline, service, tmp_path, "advance", "billing", "--new", "--actor",
                       "alice", "--reason", "ticket [/ops] 42")
    assert advanced.returncode == 0, advanced.stderr
    rolled = migrate(pipeline, service, tmp_path, "rollback", "billing", "--reason", "p95")
    assert rolled.returncode == 0, rolled.stderr
    elapsed = time.monotonic() - started

    def spans() -> list[dict[str, Any]] | None:
        found = [s for t in pipeline.jaeger.traces(service) for s in t["spans"]
                 if s["operationName"] == "transition billing"]
        return found if len(found) == 2 else None

    found, _ = wait_for(spans, timeout=30, what=f"the transition spans of {service}")
    events = sorted(({f["key"]: f["value"] for f in log["fields"]}
                     for span in found for log in span.get("logs", [])),
                    key=lambda e: str(e.get(semconv.ATTR_TO)))
    seen = [(e[semconv.ATTR_TO], e[semconv.ATTR_ACTOR], e[semconv.ATTR_REASON]) for e in events]
    assert seen == [("hybrid", "alice", "ticket [/ops] 42"), ("legacy", seen[1][1], "p95")]

    def both_counted() -> dict[tuple[str, ...], float] | None:
        values = pipeline.prometheus.values(
            f'{semconv.PROM_TRANSITIONS}{{job="{service}",{semconv.PROM_LABEL_NAME}="billing"}}',
            "aurum_migration_to")
        return values if len(values) == 2 else None  # the two exports may land in two scrapes

    counted, _ = wait_for(both_counted, timeout=30, what="the transitions counter in Prometheus")
    print(f"\n[cli export] two commands in {elapsed:.1f} s; counted {counted}")
    assert counted == {("hybrid",): 1.0, ("legacy",): 1.0}

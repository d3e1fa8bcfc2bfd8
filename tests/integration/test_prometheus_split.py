"""Issue 16.1 against the real collector and Prometheus: the rollout gauge reaches Prometheus, and
a split broken by one routing key reads unhealthy from the Prometheus source alone (the gauge is
what the generated alert and a source without the store compare the observed split with)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.health import HealthPolicy, Status
from aurum_otel.health.prometheus import PrometheusSource
from tests.integration.conftest import Pipeline, wait_for

APP = textwrap.dedent("""
    import sys
    from aurum_otel import migrated, routing_key
    from aurum_otel.setup import setup_telemetry

    handle = setup_telemetry("split", endpoint=sys.argv[2], export_interval_millis=60_000,
                             metrics_file=False)

    @migrated(sys.argv[1])
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        return i

    with routing_key("one key for everyone"):  # the bug: every call lands in one bucket
        for i in range(300):
            work(i)
    handle.shutdown()
""")


def test_a_split_broken_by_one_routing_key_reads_unhealthy_in_prometheus(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    migration = f"split_{unique}"
    FileStore.in_dir(tmp_path).transition(migration, Phase.HYBRID, Rollout(percent=10, compare=0),
                                          actor="test", reason="10 %")
    script = tmp_path / "app.py"
    script.write_text(APP)
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in {**os.environ, **pipeline.server_env}.items()
           if not k.startswith("AURUM_") or k.startswith("AURUM_OTEL_")}
    env.update({"AURUM_STATE_DIR": str(tmp_path), "PYTHONPATH": root, "AURUM_EXIT_BUDGET": "10",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    result = subprocess.run([sys.executable, str(script), migration, pipeline.otlp_endpoint],
                            env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    source = PrometheusSource(pipeline.prometheus.url)  # no store: the gauge says what was set
    gauge = f'aurum_migration_rollout_percent{{aurum_migration_name="{migration}"}}'
    (sample,), _ = wait_for(lambda: source.query(gauge) or None, timeout=60, interval=0.5,
                            what=f"{migration}'s rollout gauge in Prometheus")
    assert sample["value"] == 10
    def served(stats: Any) -> float:  # the one key lands wholly on one side, either one
        return float(stats.legacy.calls + stats.simplified.calls)

    wait_for(lambda: served(source.stats(migration, 300)) >= 300 or None, timeout=60,
             interval=0.5, what=f"{migration}'s calls in Prometheus")
    verdict = HealthPolicy().evaluate(migration, source)
    (split,) = [r for r in verdict.results if r.rule == "split"]
    print(f"\n[split] {migration}: {split.status.value}: {split.message}")
    assert split.status is Status.UNHEALTHY and "sample-ratio mismatch" in split.message

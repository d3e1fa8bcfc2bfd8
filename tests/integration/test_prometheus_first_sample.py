"""Issue 13.13 against the real collector and Prometheus: a new series' first batch counts.

A short-lived process advances a fresh migration to simplified and at once makes 100 failing and
30 good calls, then exits: every series it exports (the calls counter, the span-derived latency
histogram) is born with its first export already holding those calls. The Prometheus health
source must read the real rate (77 % errors: unhealthy), the latency quantile must be measurable,
and the generated recording rule must agree.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from aurum_otel import FileStore, Implementation, Phase, Rollout
from aurum_otel.health import HealthPolicy, Status, WindowStats
from aurum_otel.health.prometheus import PrometheusSource
from tests.integration.conftest import Pipeline, wait_for

APP = textwrap.dedent("""
    import sys
    from aurum_otel import migrated
    from aurum_otel.setup import setup_telemetry

    handle = setup_telemetry("first-sample", endpoint=sys.argv[2], export_interval_millis=60_000,
                             metrics_file=False)

    @migrated(sys.argv[1])
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        if i < 100:
            raise ValueError("the new code fails")
        return i

    for i in range(130):
        try:
            work(i)
        except ValueError:
            pass
    handle.shutdown()  # one export, at exit: every series is born with its whole count
""")


def test_an_advance_then_failing_calls_read_as_the_real_rate(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    migration = f"first_{unique}"
    FileStore.in_dir(tmp_path).transition(migration, Phase.SIMPLIFIED, Rollout(), actor="test",
                                          reason="advance, then fail at once")
    script = tmp_path / "app.py"
    script.write_text(APP)
    root = str(Path(__file__).resolve().parents[2])
    env = {**pipeline.server_env, "AURUM_STATE_DIR": str(tmp_path), "PYTHONPATH": root,
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "AURUM_EXIT_BUDGET": "10"}
    env = {k: v for k, v in env.items() if not k.startswith("AURUM_") or k in (
        "AURUM_STATE_DIR", "AURUM_EXIT_BUDGET") or k.startswith("AURUM_OTEL_")}
    result = subprocess.run([sys.executable, str(script), migration, pipeline.otlp_endpoint],
                            env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    source = PrometheusSource(pipeline.prometheus.url)

    def complete() -> WindowStats | None:
        stats = source.stats(migration, 300)
        p95 = stats.quantile(Implementation.SIMPLIFIED, 0.95)
        if stats.simplified.calls >= 130 and p95 is not None:
            return stats
        return None

    stats, waited = wait_for(complete, timeout=60, interval=0.5,
                             what=f"{migration}'s 130 simplified calls and p95 in Prometheus")
    print(f"\n[first sample] {migration}: {stats.simplified.calls:g} calls, "
          f"{stats.simplified.errors:g} errors, p95 "
          f"{stats.quantile(Implementation.SIMPLIFIED, 0.95)} s, seen after {waited:.1f} s")
    assert stats.simplified.calls == 130
    assert stats.simplified.errors == 100
    verdict = HealthPolicy().evaluate(migration, source)
    assert verdict.status is Status.UNHEALTHY, verdict.reasons
    assert any("76.92%" in reason for reason in verdict.reasons), verdict.reasons

    ratio = f'aurum:migration_error_ratio:ratio5m{{aurum_migration_name="{migration}"}}'

    def recorded() -> dict[tuple[str, ...], float] | None:
        values = pipeline.prometheus.values(ratio, "aurum_migration_implementation")
        return values or None

    values, _ = wait_for(recorded, timeout=30, what="the generated recording rule")
    assert abs(values[("simplified",)] - 100 / 130) < 1e-6

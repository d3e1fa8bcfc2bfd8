"""Paired statistics against the real collector and Prometheus (issue 16): a shadow step's pairs
leave the process as ``aurum_migration_pairs_total`` and ``aurum_migration_pair_ratios_total``,
and the Prometheus source judges them with the same figures as the in-process reader; the
generated ``AurumMigrationPaired`` alert (collector-config/aurum-rules.yml, loaded by Prometheus)
goes pending; equal implementations are healthy everywhere."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.health import HealthPolicy, PairedRule, Status
from aurum_otel.health.prometheus import PrometheusSource
from tests.integration.conftest import Pipeline, run_script, wait_for

ALERT = "AurumMigrationPaired"
APP = textwrap.dedent("""
    import json
    import sys
    import time

    from aurum_otel import migrated
    from aurum_otel.health import HealthPolicy, PairedRule
    from aurum_otel.registry import get_registry
    from aurum_otel.setup import setup_telemetry

    name, endpoint, worse = sys.argv[1], sys.argv[2], sys.argv[3] == "worse"
    handle = setup_telemetry("paired", endpoint=endpoint, export_interval_millis=60_000,
                             metrics_file=False)

    @migrated(name)
    def work(i: int) -> int:
        time.sleep(0.006)
        if i % 50 == 0:
            raise ValueError("both sides fail on these")
        return i

    @work.simplified
    def _work(i: int) -> int:
        time.sleep(0.018 if worse else 0.006)  # 3x: +12 ms, a slowdown that matters
        if i % 50 == 0 or (worse and i % 10 == 3):
            raise ValueError("simplified fails on a tenth more")
        return i

    reader = handle.health_reader
    reader.snapshot()
    for i in range(300):
        try:
            work(i)
        except ValueError:
            pass
        time.sleep(0.012)  # the shadow workers keep up: no pair is dropped
    get_registry().shadows.join(30)
    stats = reader.stats(name, 300)
    verdict = HealthPolicy(PairedRule()).evaluate(name, reader)
    pairs = stats.pairs
    print(json.dumps({
        "pairs": None if pairs is None else [pairs.pairs, pairs.legacy_only_failed,
                                             pairs.simplified_only_failed, pairs.slower,
                                             pairs.faster, [c for _, c in pairs.ratios]],
        "results": [[r.rule, r.status.value, r.message] for r in verdict.results],
    }))
    handle.shutdown()
""")


def _run(pipeline: Pipeline, tmp_path: Path, migration: str, mode: str) -> dict[str, Any]:
    FileStore.in_dir(tmp_path).transition(migration, Phase.HYBRID, Rollout(percent=0, compare=100),
                                          actor="test", reason="shadow step")
    result = run_script(pipeline, tmp_path, APP, migration, pipeline.otlp_endpoint, mode,
                        timeout=180)
    local: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return local


def _alert(pipeline: Pipeline, migration: str) -> dict[str, Any] | None:
    return next((a for a in pipeline.prometheus.alerts()
                 if a["labels"].get("alertname") == ALERT
                 and a["labels"].get("aurum_migration_name") == migration), None)


def _figures(source: PrometheusSource, migration: str) -> list[Any] | None:
    pairs = source.stats(migration, 300).pairs
    if pairs is None:
        return None
    return [pairs.pairs, pairs.legacy_only_failed, pairs.simplified_only_failed, pairs.slower,
            pairs.faster, [c for _, c in pairs.ratios]]


@pytest.mark.parametrize("mode", ["worse", "same"])
def test_paired_verdicts_agree_in_process_in_prometheus_and_in_the_alert(
    pipeline: Pipeline, unique: str, tmp_path: Path, mode: str
) -> None:
    assert any(rule.get("name") == ALERT for group in pipeline.prometheus.rule_groups()
               for rule in group["rules"]), (
        "Prometheus has not loaded the paired alert from collector-config/aurum-rules.yml: "
        "reload it (curl -X POST $AURUM_OTEL_PROMETHEUS_URL/-/reload)")
    migration = f"paired_{mode}_{unique}"
    local = _run(pipeline, tmp_path, migration, mode)
    assert local["pairs"] is not None and local["pairs"][0] == 300, local
    source = PrometheusSource(pipeline.prometheus.url)
    # the pairs reach Prometheus at the process's last export: wait for all of them
    figures, _ = wait_for(lambda: (f := _figures(source, migration)) and f[0] >= 300 and f,
                          timeout=60, interval=0.5, what=f"{migration}'s 300 pairs in Prometheus")
    assert figures == local["pairs"]
    verdict = HealthPolicy(PairedRule()).evaluate(migration, source)
    found = [[r.rule, r.status.value, r.message] for r in verdict.results]
    print(f"\n[paired] {migration}: " + "; ".join(f"{s}: {m}" for _, s, m in found))
    assert found == local["results"]
    if mode == "worse":
        assert verdict.status is Status.UNHEALTHY
        errors, latency = verdict.results
        assert errors.status is Status.UNHEALTHY and latency.status is Status.UNHEALTHY
        assert errors.samples["simplified_only_failed"] == 30
        alert, seconds = wait_for(lambda: _alert(pipeline, migration), timeout=60, interval=0.5,
                                  what=f"{ALERT} for {migration}")
        print(f"[paired] {ALERT} {alert['state']} after {seconds:.1f} s")
        assert alert["state"] in ("pending", "firing")
    else:
        assert verdict.status is Status.HEALTHY, verdict.reasons
        time.sleep(3)  # a few rule evaluations (every second) over the pairs
        assert _alert(pipeline, migration) is None

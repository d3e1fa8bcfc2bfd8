"""Issue 16.1 against the real collector and Prometheus: the rollout gauge and the routing-keys
gauge reach Prometheus, and the Prometheus source alone judges a keyed split by its distinct keys
(the rollout gauge is what the generated alert and a source without the store compare with)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.health import HealthPolicy, Status
from aurum_otel.health.prometheus import PrometheusSource
from tests.integration.conftest import Pipeline, run_script, wait_for

APP = textwrap.dedent("""
    import sys
    import aurum_otel.route
    from aurum_otel import migrated, routing_key
    from aurum_otel.setup import setup_telemetry

    name, endpoint, mode = sys.argv[1:4]
    handle = setup_telemetry("split", endpoint=endpoint, export_interval_millis=60_000,
                             metrics_file=False)
    if mode == "ignores-key":  # the mutant: a router that splits every call at random
        decide = aurum_otel.route.decide
        aurum_otel.route.decide = lambda state, **kw: decide(state, **{**kw, "key": None,
                                                                        "digest": None})

    @migrated(name)
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        return i

    for i in range(300):
        # one-key: the bug of a constant key extractor; otherwise 60 users, 5 calls each
        with routing_key("one key for everyone" if mode == "one-key" else f"user-{i % 60}"):
            work(i)
    handle.shutdown()
""")


def _run(pipeline: Pipeline, tmp_path: Path, migration: str, mode: str) -> PrometheusSource:
    FileStore.in_dir(tmp_path).transition(migration, Phase.HYBRID, Rollout(percent=10, compare=0),
                                          actor="test", reason="10 %")
    run_script(pipeline, tmp_path, APP, migration, pipeline.otlp_endpoint, mode)
    source = PrometheusSource(pipeline.prometheus.url)  # no store: the gauge says what was set
    gauge = f'aurum_migration_rollout_percent{{aurum_migration_name="{migration}"}}'
    (sample,), _ = wait_for(lambda: source.query(gauge) or None, timeout=60, interval=0.5,
                            what=f"{migration}'s rollout gauge in Prometheus")
    assert sample["value"] == 10

    def served(stats: Any) -> float:
        return float(stats.legacy.calls + stats.simplified.calls)

    wait_for(lambda: served(source.stats(migration, 300)) >= 300 or None, timeout=60,
             interval=0.5, what=f"{migration}'s calls in Prometheus")
    return source


def _split(source: PrometheusSource, migration: str) -> Any:
    verdict = HealthPolicy().evaluate(migration, source)
    (split,) = [r for r in verdict.results if r.rule == "split"]
    print(f"\n[split] {migration}: {split.status.value}: {split.message}")
    return split


def test_one_routing_key_for_every_call_is_never_healthy_in_prometheus(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    """The routing-keys gauge reaches Prometheus: one key is too few to trust the split."""
    migration = f"split_{unique}"
    source = _run(pipeline, tmp_path, migration, "one-key")
    split = _split(source, migration)
    assert split.status is Status.INCONCLUSIVE
    assert "1 distinct routing key since the step began: too few" in split.message
    assert split.samples["legacy_keys"] + split.samples["simplified_keys"] == 1


def test_a_router_that_ignores_the_key_reads_unhealthy_in_prometheus(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    migration = f"split_{unique}"
    source = _run(pipeline, tmp_path, migration, "ignores-key")
    split = _split(source, migration)
    assert split.status is Status.UNHEALTHY and "sample-ratio mismatch" in split.message
    assert "distinct routing keys" in split.message
    assert split.samples["legacy_keys"] == 60  # every user reached legacy at least once


def test_a_correct_keyed_split_reads_healthy_in_prometheus(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    migration = f"split_{unique}"
    source = _run(pipeline, tmp_path, migration, "per-user")
    split = _split(source, migration)
    assert split.samples["legacy_keys"] + split.samples["simplified_keys"] == 60
    assert split.status is Status.HEALTHY, split.message

"""Issue 16.5 against the real collector and Prometheus: ``health NAME --replay`` replays the rules
over Prometheus's history (each query as of its moment) and says when a controller would have
rolled back: before the failing calls, healthy or not judged; after them, a rollback."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.cli import cli
from aurum_otel.health.prometheus import PrometheusSource
from tests.integration.conftest import Pipeline, run_script, wait_for
from tests.integration.test_prometheus_first_sample import APP


def test_the_replay_finds_the_moment_a_bad_release_would_have_rolled_back(
    pipeline: Pipeline, unique: str, tmp_path: Path
) -> None:
    migration = f"backtest_{unique}"
    FileStore.in_dir(tmp_path).transition(migration, Phase.SIMPLIFIED, Rollout(), actor="test",
                                          reason="advance, then fail at once")
    before = time.time()  # the app: 100 failing then 30 good simplified calls, one export
    run_script(pipeline, tmp_path, APP, migration, pipeline.otlp_endpoint)
    source = PrometheusSource(pipeline.prometheus.url)
    wait_for(lambda: source.stats(migration, 300).simplified.calls >= 130 or None, timeout=60,
             interval=0.5, what=f"{migration}'s calls in Prometheus")
    time.sleep(1)
    span = max(int(time.time() - before) + 30, 60)
    replayed = CliRunner().invoke(cli, [
        "health", migration, "--replay", f"{span}s", "--step", "5", "--rollback-after", "1",
        "--source", "prometheus", "--prometheus-url", pipeline.prometheus.url, "--json",
    ], env={"AURUM_STATE_DIR": str(tmp_path)})
    assert replayed.exit_code == 0, replayed.output
    answer = json.loads(replayed.stdout)
    statuses = [m["status"] for m in answer["moments"]]
    rollback_at = answer["would_first"]["rollback"]
    print(f"\n[backtest] {migration}: {len(statuses)} moments over {span} s, statuses "
          f"{sorted(set(statuses))}, first rollback at {rollback_at and rollback_at - before:.1f} "
          "s after the app started")
    assert statuses[0] != "unhealthy"  # before the release: nothing to judge yet
    assert "unhealthy" in statuses
    assert rollback_at is not None and rollback_at >= before

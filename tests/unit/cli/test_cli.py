"""Every ``aurum-migrate`` command, run as a real subprocess: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.guide.metrics_file import merge
from aurum_otel.health.file import BUCKET_SECONDS


def run(state: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AURUM_")}
    environment.update({"AURUM_STATE_DIR": str(state), "COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-m", "aurum_otel.cli", *args], capture_output=True,
                          text=True, env=environment, timeout=120)


def traffic(state: Path, name: str, legacy: int, simplified: int, errors: int = 0,
            slow: bool = False) -> None:
    bounds = [0.005, 0.01, 0.1, 1.0]
    counts = [0, 0, 0, 1, 0] if slow else [0, 1, 0, 0, 0]
    merge(state / "migration_metrics.json", {name: {
        "calls": {("legacy", "authoritative", "success"): legacy,
                  ("simplified", "authoritative", "success"): simplified - errors,
                  ("simplified", "authoritative", "error"): errors},
        "hist": {
            "legacy": {"bounds": bounds, "counts": [0, legacy, 0, 0, 0], "sum": legacy * 0.008,
                       "count": legacy, "authoritative_sum": legacy * 0.008,
                       "authoritative_count": legacy},
            "simplified": {"bounds": bounds, "counts": [c * simplified for c in counts],
                           "sum": simplified * 0.5, "count": simplified,
                           "authoritative_sum": simplified * 0.5,
                           "authoritative_count": simplified},
        },
        "comparisons": {"match": 100},
    }}, {name: "hybrid"})


def test_help_on_every_command(tmp_path: Path) -> None:
    for command in ("", "status", "advance", "rollback", "history", "health", "watch", "monitor",
                    "rules", "demo"):
        result = run(tmp_path, *([command] if command else []), "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: aurum-migrate" in result.stdout


def test_advance_status_history_rollback(tmp_path: Path) -> None:
    result = run(tmp_path, "advance", "billing", "--new", "--reason", "start shadow", "--actor",
                 "alice")
    assert result.returncode == 0, result.stderr
    assert "billing: legacy -> hybrid (percent 0, compare 100) by alice: start shadow" in result.stdout
    assert run(tmp_path, "advance", "billing").returncode == 0  # next plan step: 10 %
    result = run(tmp_path, "advance", "billing", "hybrid", "--percent", "30")
    assert "percent 30" in result.stdout
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    billing = next(s for s in status if s["name"] == "billing")
    assert (billing["phase"], billing["rollout"]["percent"], billing["phase_source"]) == (
        "hybrid", 30.0, "store")
    table = run(tmp_path, "status").stdout
    assert "billing" in table and "30% / compare" in table
    result = run(tmp_path, "rollback", "billing", "--reason", "p95 regression")
    assert result.returncode == 0 and "hybrid -> legacy" in result.stdout
    history = json.loads(run(tmp_path, "history", "billing", "--json").stdout)
    assert [h["to"] for h in history] == ["hybrid", "hybrid", "hybrid", "legacy"]
    assert history[-1]["reason"] == "p95 regression"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["advance", "settings", "sideways"], "PHASE='sideways' is not valid; allowed: legacy, hybrid"),
        (["advance", "settings", "simplified", "--percent", "20"], "only with hybrid"),
        (["health", "--rules", "/nonexistent/rules.yaml"], "a readable YAML file"),
    ],
)
def test_errors_say_what_to_change(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 3
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_exit_64(tmp_path: Path) -> None:
    result = run(tmp_path, "advance")
    assert result.returncode == 64 and "Missing argument" in result.stderr
    assert run(tmp_path, "frobnicate").returncode == 64
    assert run(tmp_path, "advance", "x", "hybrid", "--percent", "150").returncode == 64
    result = run(tmp_path, "health", "--window", "-1")
    assert result.returncode == 64 and "--window" in result.stderr


def test_health_exit_codes_and_json(tmp_path: Path) -> None:
    traffic(tmp_path, "good", legacy=500, simplified=500)
    traffic(tmp_path, "bad", legacy=500, simplified=500, errors=200)
    traffic(tmp_path, "slow", legacy=500, simplified=500, slow=True)
    traffic(tmp_path, "thin", legacy=5, simplified=5)
    assert run(tmp_path, "health", "good").returncode == 0
    bad = run(tmp_path, "health", "bad")
    assert bad.returncode == 1 and "error_rate" in bad.stdout and "40.00%" in bad.stdout
    assert run(tmp_path, "health", "slow").returncode == 1
    assert run(tmp_path, "health", "thin").returncode == 2
    payload = json.loads(run(tmp_path, "health", "bad", "--json").stdout)
    assert payload["status"] == "unhealthy" and not payload["healthy"]
    (verdict,) = payload["migrations"]
    error_rule = next(r for r in verdict["results"] if r["rule"] == "error_rate")
    assert error_rule["value"] == pytest.approx(0.4)
    assert error_rule["samples"] == {"legacy": 500, "simplified": 500}


def test_health_from_an_unreachable_prometheus_is_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path, "health", "x", "--source", "prometheus",
                 "--prometheus-url", "http://127.0.0.1:9")
    assert result.returncode == 3
    assert "cannot reach Prometheus at http://127.0.0.1:9" in result.stderr


def test_corrupt_state_file(tmp_path: Path) -> None:
    (tmp_path / "migration_state.json").write_text("{oops")
    result = run(tmp_path, "status")
    assert result.returncode == 3
    assert "not valid JSON" in result.stderr and "calls run on legacy" in result.stderr
    result = run(tmp_path, "advance", "x", "--new")
    assert result.returncode == 0, result.stderr
    kept = list(tmp_path.glob("migration_state.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{oops"


def test_watch_advances_on_healthy_figures(tmp_path: Path) -> None:
    FileStore.in_dir(tmp_path).transition("good", Phase.HYBRID, Rollout(percent=0, compare=100),
                                          actor="t", reason="t")
    # The file source judges a step on the buckets that end after it began (merged figures carry
    # no step): merge where the whole run (two steps, a process start) stays in one 10 s bucket.
    into_bucket = time.time() % BUCKET_SECONDS
    if into_bucket > BUCKET_SECONDS - 5:
        time.sleep(BUCKET_SECONDS - into_bucket + 0.05)
    traffic(tmp_path, "good", legacy=500, simplified=500)
    result = run(tmp_path, "watch", "good", "--interval", "0.1", "--bake", "0",
                 "--max-ticks", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("healthy advanced: advanced to") == 2
    assert FileStore.in_dir(tmp_path).snapshot().records["good"].rollout.percent == 50


def test_monitor_once(tmp_path: Path) -> None:
    traffic(tmp_path, "good", legacy=120, simplified=80)
    result = run(tmp_path, "monitor", "--once")
    assert result.returncode == 0
    assert "good" in result.stdout and "120" in result.stdout and "80" in result.stdout


def test_rules_check(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    assert run(tmp_path, "rules", "-o", str(out)).returncode == 0
    assert "AurumMigrationErrorRate" in out.read_text()
    assert run(tmp_path, "rules", "--check", str(out)).returncode == 0
    out.write_text(out.read_text() + "# edited\n")
    result = run(tmp_path, "rules", "--check", str(out))
    assert result.returncode == 3 and "out of date" in result.stderr


def test_demo_runs_and_rolls_back(tmp_path: Path) -> None:
    result = run(tmp_path, "demo", "--duration", "20", "--state-dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database rolled back to legacy" in result.stdout
    assert "settings walked: legacy -> shadow -> 10% -> 50% -> 100% -> simplified" in result.stdout
    assert "demo complete" in result.stdout
    # The demo's state is not invisible: it says how to watch it, and that command works.
    assert f"watch it from another shell: AURUM_STATE_DIR={tmp_path / 'demo'} aurum-migrate monitor" \
        in result.stdout
    assert f"look at it again: AURUM_STATE_DIR={tmp_path / 'demo'} aurum-migrate status" \
        in result.stdout
    status = json.loads(run(tmp_path / "demo", "status", "--json").stdout)
    assert {row["name"]: row["phase"] for row in status} == {"database": "legacy",
                                                             "settings": "simplified"}
    document = json.loads((tmp_path / "demo" / "migration_metrics.json").read_text())
    assert document["settings_migration"]["simplified_calls"] > 0
    assert document["database_migration"]["migration_phase"] == "legacy"

"""A plan with an approval gate, a pause gate and a hand-made pause, walked through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aurum_otel import testing
from aurum_otel.cli import cli
from aurum_otel.guide.metrics_file import merge
from aurum_otel.health.file import BUCKET_SECONDS
from aurum_otel.store import FileStore

PLAN = """\
bake: 0
steps:
  - {percent: 0, compare: 100}
  - {percent: 10, compare: 25, rules: [error_rate, mismatch_rate]}
  - {percent: 50, compare: 25, approve: true}
  - {percent: 100, compare: 25, pause: true}
  - {phase: simplified}
"""


def invoke(*args: str) -> Result:
    testing.reset()  # each command line is a fresh process
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "250"})
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def healthy_traffic(state: Path, name: str) -> None:
    bounds = [0.005, 0.01, 0.1, 1.0]
    merge(state / "migration_metrics.json", {name: {
        "calls": {("legacy", "authoritative", "success"): 500,
                  ("simplified", "authoritative", "success"): 500},
        "hist": {side: {"bounds": bounds, "counts": [0, 500, 0, 0, 0], "sum": 4.0, "count": 500,
                        "authoritative_sum": 4.0, "authoritative_count": 500}
                 for side in ("legacy", "simplified")},
        "comparisons": {"match": 100},
    }}, {name: "hybrid"})


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    (tmp_path / "plan.yml").write_text(PLAN)
    return tmp_path


def percent(state: Path) -> tuple[str, float]:
    record = FileStore.in_dir(state).snapshot().records["svc"]
    return record.phase.value, record.rollout.percent


def watch(state: Path, ticks: int) -> Result:
    """``watch`` for a few ticks, on fresh healthy traffic counted in the steps it walks.

    The file source judges a step on the buckets that end after the step began (the merged
    figures carry no step of their own), so the traffic is merged in a 10 s bucket that the whole
    ``watch`` run stays inside: not within 2 s of the next bucket boundary.
    """
    into_bucket = time.time() % BUCKET_SECONDS
    if into_bucket > BUCKET_SECONDS - 2:
        time.sleep(BUCKET_SECONDS - into_bucket + 0.05)
    healthy_traffic(state, "svc")
    return invoke("watch", "svc", "--plan", str(state / "plan.yml"), "--interval", "0.1",
                  "--max-ticks", str(ticks))


def test_a_plan_with_gates_walked_end_to_end(state: Path) -> None:
    result = invoke("plan", "validate", str(state / "plan.yml"))
    assert result.exit_code == 0, result.output
    assert "5 steps" in result.stdout and "approve" in result.stdout and "pause" in result.stdout

    assert invoke("advance", "svc", "--new").exit_code == 0
    healthy_traffic(state, "svc")
    result = watch(state, 3)
    assert result.exit_code == 0, result.output
    assert "advanced to hybrid 10%" in result.stdout
    assert "waiting before hybrid 50% (compare 25%) (approve gate)" in result.stdout
    assert "aurum-migrate approve svc --reason" in result.stdout
    assert percent(state) == ("hybrid", 10)

    shown = invoke("plan", "show", "svc")
    assert shown.exit_code == 0, shown.output
    assert str(state / "plan.yml") in shown.stdout
    assert "> 1  hybrid 10% (compare 25%)" in shown.stdout
    assert "next: hybrid 50% (compare 25%): waiting for approval" in shown.stdout
    assert "rules error_rate, mismatch_rate" in shown.stdout

    assert invoke("approve", "svc").exit_code == 64  # a reason is required
    approved = invoke("approve", "svc", "--reason", "CAB-12 [ok]", "--actor", "eve")
    assert approved.exit_code == 0, approved.output
    assert "eve approved" in approved.stdout and "CAB-12 [ok]" in approved.stdout

    result = watch(state, 2)
    assert "advanced to hybrid 50%" in result.stdout
    assert "waiting before hybrid 100% (compare 25%) (pause gate)" in result.stdout
    assert percent(state) == ("hybrid", 50)
    assert invoke("resume", "svc", "--reason", "metrics look fine").exit_code == 0
    result = watch(state, 1)
    assert "advanced to hybrid 100%" in result.stdout and percent(state) == ("hybrid", 100)

    # A pause by hand holds any step until resume.
    paused = invoke("pause", "svc", "--reason", "release freeze", "--actor", "ops")
    assert paused.exit_code == 0, paused.output
    result = watch(state, 2)
    assert result.stdout.count("paused by ops: release freeze") == 2
    assert percent(state) == ("hybrid", 100)
    assert "paused by ops: release freeze" in invoke("plan", "show", "svc").stdout
    assert invoke("resume", "svc").exit_code == 0
    result = watch(state, 2)
    assert "advanced to simplified" in result.stdout and "done" in result.stdout
    assert percent(state)[0] == "simplified"
    control = json.loads((state / "control.json").read_text())["svc"]
    assert "paused" not in control and "waiting" not in control


def test_plan_validate_names_the_bad_field(state: Path) -> None:
    bad = state / "bad.yml"
    bad.write_text("steps:\n  - {percent: 10}\n  - {percent: 5, aprove: true}\n")
    result = invoke("plan", "validate", str(bad))
    assert result.exit_code == 3
    assert "steps[1].aprove" in result.stderr and "approve" in result.stderr
    bad.write_text("steps:\n  - {percent: 50}\n  - {percent: 10}\n")
    result = invoke("plan", "validate", str(bad))
    assert result.exit_code == 3 and "steps[1]" in result.stderr and "higher percent" in result.stderr
    bad.write_text("steps:\n  - {percent: 10, rules: [eror_rate]}\n")
    result = invoke("plan", "validate", str(bad))
    assert result.exit_code == 3 and "error_rate" in result.stderr
    result = invoke("watch", "svc", "--plan", str(bad), "--max-ticks", "1")
    assert result.exit_code == 3


def test_plan_show_of_a_migration_without_a_plan_shows_the_built_in_one(state: Path) -> None:
    assert invoke("advance", "svc", "--new").exit_code == 0
    shown = invoke("plan", "show", "svc")
    assert shown.exit_code == 0, shown.output
    assert "built-in" in shown.stdout and "> 0  hybrid shadow" in shown.stdout
    assert "next: hybrid 10% (compare 25%)" in shown.stdout


def test_pause_of_an_unknown_migration_is_exit_3(state: Path) -> None:
    result = invoke("pause", "nosuch", "--reason", "x")
    assert result.exit_code == 3 and "unknown migration 'nosuch'" in result.stderr

"""Verdict history (issue 16.4): every verdict the controller acts on is kept with the verdicts
that led to it and the transition it wrote; the others too, bounded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from aurum_otel import FileStore, testing
from aurum_otel.cli import cli
from aurum_otel.control import Controller
from aurum_otel.control.backends import control_store_for
from aurum_otel.control.verdicts import appended
from aurum_otel.health import HealthPolicy, default_rules
from tests.unit.test_control import noisy_service


def test_a_rollback_keeps_the_unhealthy_streak_that_caused_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    now = [0.0]
    traffic = noisy_service({"legacy": 0.0, "simplified": 0.6}, random.Random(3))
    with testing.capture(state_dir=tmp_path, clock=lambda: now[0]) as telemetry:
        controller = Controller("svc", bake=10, rollback_after=3, clock=lambda: now[0],
                                policy=HealthPolicy(default_rules(min_samples=20), window=30))
        controller.advance()
        actions = []
        for _ in range(12):
            traffic(80)
            telemetry.wait_for_shadows()
            now[0] += 5
            actions.append(controller.tick().action)
            if actions[-1] == "rolled_back":
                break
    assert actions[-1] == "rolled_back", actions
    history = control_store_for(FileStore.in_dir(tmp_path)).load("svc").verdicts
    rollback = history[-1]
    assert rollback["action"] == "rolled_back" and rollback["status"] == "unhealthy"
    record = FileStore.in_dir(tmp_path).snapshot().records["svc"]
    assert rollback["transition_id"] == record.history[-1].id != ""
    by_id = {v["id"]: v for v in history}
    assert len(rollback["caused_by"]) == 2  # with this one, the 3 unhealthy verdicts in a row
    assert all(by_id[i]["status"] == "unhealthy" for i in rollback["caused_by"])
    error_rule = next(r for r in rollback["results"] if r["rule"] == "error_rate")
    assert error_rule["status"] == "unhealthy" and error_rule["samples"]
    shown = CliRunner().invoke(cli, ["verdicts", "svc", "--acted", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [v["action"] for v in json.loads(shown.stdout)] == ["rolled_back"]
    text = CliRunner().invoke(cli, ["verdicts", "svc"], env={"COLUMNS": "250"})
    assert text.exit_code == 0 and f"transition {rollback['transition_id']}" in text.stdout


def test_the_history_is_bounded_and_keeps_what_was_acted_on() -> None:
    history: tuple[dict[str, object], ...] = ()
    acted = {"id": "a0", "action": "advanced"}
    history = appended(history, acted, limit=5)
    for i in range(20):
        history = appended(history, {"id": f"h{i}", "action": "held"}, limit=5)
    assert len(history) == 5
    assert history[0] == acted  # the oldest held ones went first
    assert [h["id"] for h in history[1:]] == ["h16", "h17", "h18", "h19"]

"""Backtesting a policy (issue 16.5): the rules replayed over the past, step by step, with what a
controller would have done beside what really happened."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
from click.testing import CliRunner

from aurum_otel.cli import cli
from aurum_otel.health import HealthPolicy, default_rules
from aurum_otel.health.backtest import first_actions, replay
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.health.stats import PairStats, SideStats, WindowStats
from aurum_otel.health.verdict import Status
from aurum_otel.phase import Phase, Rollout

BAD_FROM = 1_000.0


class History:
    """A health source as of a moment: clean traffic, then 40 % simplified errors from BAD_FROM."""

    name = "history"

    def __init__(self, at: float) -> None:
        self.at = at

    def stats(self, migration: str, window: float) -> WindowStats:
        bad = self.at >= BAD_FROM
        return WindowStats(migration, window, legacy=SideStats(200, 1),
                           simplified=SideStats(200, 80 if bad else 1), source="history",
                           quantiles={"legacy:0.95": 0.010, "simplified:0.95": 0.011})


def _transition(at: float, to: Phase, reason: str) -> Any:
    return types.SimpleNamespace(at=at, from_phase=Phase.HYBRID, to_phase=to, actor="watch",
                                 reason=reason)


def test_the_replay_says_when_the_controller_would_have_acted() -> None:
    policy = HealthPolicy(default_rules(min_samples=20), window=300)
    real_rollback = _transition(BAD_FROM + 600, Phase.LEGACY, "rolled back by hand, late")
    moments = replay(policy, "orders", History, start=0.0, end=2000.0, step=60.0,
                     transitions=[real_rollback], bake=300.0, rollback_after=3)
    first = first_actions(moments)
    assert first["advance"] == 300.0  # healthy for the bake from the start
    assert first["rollback"] == 1140.0  # the third unhealthy verdict (1020, 1080, 1140)
    (happened,) = [m for m in moments if m.happened]
    assert happened.at == 1620.0 and "rolled back by hand" in happened.happened[0]


class Recording:
    """A requests session that answers an empty vector and remembers the queries' params."""

    def __init__(self) -> None:
        self.params: list[dict[str, str]] = []

    def get(self, url: str, params: dict[str, str], timeout: float) -> Any:
        self.params.append(dict(params))
        return types.SimpleNamespace(
            status_code=200, text="",
            content=json.dumps({"status": "success",
                                "data": {"resultType": "vector", "result": []}}).encode())


def test_a_past_moment_is_queried_as_of_that_moment() -> None:
    session = Recording()
    source = PrometheusSource("http://127.0.0.1:9", session=session)  # type: ignore[arg-type]
    source.as_of(1234.5).stats("orders", 300)
    assert session.params and all(p["time"] == "1234.500" for p in session.params)
    source.stats("orders", 300)
    assert "time" not in session.params[-1]  # the source itself still asks about now


@pytest.mark.parametrize("args", [["health", "orders", "--replay", "1h"],
                                  ["health", "--replay", "1h", "--source", "prometheus"],
                                  ["health", "orders", "--replay", "soon", "--source",
                                   "prometheus"]])
def test_replay_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 64, result.output


def test_an_unreachable_prometheus_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["health", "orders", "--replay", "5m", "--step", "60",
                                      "--source", "prometheus", "--prometheus-url",
                                      "http://127.0.0.1:9"])
    assert result.exit_code == 3 and "cannot reach Prometheus" in result.output


class PairedHistory:
    """A shadow step where simplified fails alone on 40 of 400 inputs: only pairs show it."""

    name = "pairs"

    def __init__(self, at: float) -> None:
        self.at = at

    def stats(self, migration: str, window: float) -> WindowStats:
        pairs = PairStats(400, 0, 40, 200, 200, ((1.0, 200), (2.0, 400), (float("inf"), 400)))
        return WindowStats(migration, window, legacy=SideStats(400, 0),
                           simplified=SideStats(400, 4), matches=400, source="history",
                           quantiles={"legacy:0.95": 0.010, "simplified:0.95": 0.010},
                           pairs=pairs)


def test_a_replayed_shadow_step_is_judged_pair_by_pair_as_the_controller_does() -> None:
    policy = HealthPolicy(default_rules(min_samples=20), window=300)
    shadow = types.SimpleNamespace(at=10.0, from_phase=Phase.LEGACY, to_phase=Phase.HYBRID,
                                   actor="watch", reason="advance",
                                   rollout=Rollout(percent=0, compare=100))
    later = types.SimpleNamespace(at=500.0, from_phase=Phase.HYBRID, to_phase=Phase.HYBRID,
                                  actor="watch", reason="advance",
                                  rollout=Rollout(percent=10, compare=25))
    moments = replay(policy, "orders", PairedHistory, start=0.0, end=700.0, step=60.0,
                     transitions=[shadow, later], bake=1000.0, rollback_after=3)
    statuses = {m.at: m.verdict.status for m in moments}
    assert statuses[60.0] is Status.UNHEALTHY  # the shadow step: paired:errors
    assert any(r.rule == "paired:errors" for r in moments[1].verdict.results)
    assert statuses[600.0] is Status.HEALTHY  # 10 %: the policy as it is, no paired rule
    assert first_actions(moments)["rollback"] == 180.0

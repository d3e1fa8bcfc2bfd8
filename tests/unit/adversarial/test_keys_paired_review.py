"""Adversarial review of issue 16/19 changes (split by distinct keys, context id, paired rule in
shadow steps). Each xfail(strict=True) pins a defect found on the current code; the plain tests
pin what held."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import aurum_otel.cli.judge as judge_module
from aurum_otel import FileStore, Phase, Rollout, migrated, routing_key, testing
from aurum_otel.cli.app import cli
from aurum_otel.control import Controller
from aurum_otel.health import (
    HealthPolicy,
    HealthReader,
    PairStats,
    SideStats,
    SplitRule,
    Status,
    WindowStats,
    default_rules,
)
from aurum_otel.health.file import split_from_steps
from aurum_otel.health.paired import PairedRule
from aurum_otel.health.rules import AllOf
from aurum_otel.telemetry.aggregate import KEYS_KEPT, Aggregator

NAME = "orders"


def _keyed(store: FileStore) -> tuple[object, object]:
    @migrated(NAME, key=lambda user: user)
    def load(user: object) -> str:
        return "legacy"

    @load.simplified
    def _load(user: object) -> str:
        return "simplified"

    return load, _load


def test_a_surrogate_escaped_str_key_is_sticky(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=50, compare=0), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store):
        load, _ = _keyed(store)
        key = b"report-\xff.csv".decode("utf-8", "surrogateescape")
        served = {load(key) for _ in range(40)}  # type: ignore[operator]
    assert len(served) == 1, served  # same key, same implementation


def test_odd_keys_never_fail_the_call_and_stay_sticky(tmp_path: Path) -> None:
    class Raises:
        def __format__(self, spec: str) -> str:
            raise RuntimeError("no")

    class NotStr:
        def __format__(self, spec: str) -> object:
            return 42

    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=50, compare=100), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        load, _ = _keyed(store)
        for key in (Raises(), NotStr(), [1, 2], {"a": 1}, b"\xff\x00", "x" * 1_000_000):
            results = {load(key) for _ in range(10)}  # type: ignore[operator]
            if isinstance(key, (list, dict, bytes, str)):
                assert len(results) == 1, (type(key), results)
        telemetry.wait_for_shadows()
        for span in telemetry.spans():
            text = repr(dict(span.attributes or {})) + repr(
                [dict(e.attributes or {}) for e in span.events])
            assert "xxxxxxxx" not in text and "\\xff\\x00" not in text  # no raw key leaks


def test_many_threads_recording_keys_stay_near_the_cap() -> None:
    aggregator = Aggregator()

    def work(seed: int) -> None:
        for j in range(5000):
            aggregator.record_key(NAME, 10.0 if j % 500 else 25.0, j % 10 == 0, seed * 10**6 + j)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = aggregator.routing_keys()[NAME]
    assert keys.legacy + keys.simplified <= KEYS_KEPT + 16


def test_a_new_run_of_the_same_percent_starts_its_keys_afresh(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=10, compare=0), actor="t", reason="t")
    ticks = [0.0]
    with testing.CapturedTelemetry(store=store) as telemetry:
        assert telemetry.registry is not None
        load, _ = _keyed(store)
        for i in range(300):  # the first run: 300 users
            load(f"user-{i}")  # type: ignore[operator]
        store.transition(NAME, Phase.LEGACY, None, actor="t", reason="rollback")
        load("user-0")  # type: ignore[operator]
        store.transition(NAME, Phase.HYBRID, Rollout(percent=10, compare=0), actor="t",
                         reason="again")
        since = store.snapshot().records[NAME].updated_at
        reader = HealthReader(telemetry.health.aggregator, clock=lambda: ticks[0],
                              wall=lambda: since + 1 + ticks[0],
                              split_of=split_from_steps(telemetry.registry.step_of))
        reader.snapshot()
        for _ in range(200):  # the new run: a key extractor returning a constant
            load("same-tenant")  # type: ignore[operator]
        ticks[0] = 60.0
        stats = reader.stats(NAME, 300)
    (result,) = SplitRule().check(stats)
    assert stats.split is not None and stats.split.keys == 1, stats.split
    assert result.status is Status.INCONCLUSIVE, result.message


LEGACY_SLOWER = PairStats(400, 0, 0, 300, 100, ((1.0, 100), (4.0, 400), (float("inf"), 400)))


def test_paired_latency_with_a_nan_legacy_median_says_unknown() -> None:
    result = PairedRule().latency(LEGACY_SLOWER, 60, "q", float("nan"))
    assert "nan" not in result.message.lower(), result.message
    assert "unknown" in result.message


@pytest.mark.parametrize("p50", [-0.01, float("-inf")])
def test_paired_latency_with_a_negative_legacy_median_says_unknown(p50: float) -> None:
    result = PairedRule().latency(LEGACY_SLOWER, 60, "q", p50)
    assert "unknown" in result.message, result.message


class _Pairs:
    name = "pairs"

    def stats(self, migration: str, window: float) -> WindowStats:
        worse = PairStats(400, 0, 40, 200, 200, ((1.0, 200), (2.0, 400), (float("inf"), 400)))
        return WindowStats(migration, window, SideStats(400, 0), SideStats(400, 4),
                           matches=400, mismatches=0, pairs=worse)


def test_a_shadow_step_with_an_empty_policy_is_not_a_failed_evaluation(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    controller = Controller("svc", store=store, source=_Pairs(), rollback_after=1,
                            policy=HealthPolicy(AllOf(())))
    tick = controller.tick()
    assert tick.action != "failed", tick.message


def test_health_cli_judges_the_shadow_step_as_the_controller_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))  # the CLI's store, as in a shell
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    tick = Controller("svc", store=store, source=_Pairs(), rollback_after=1,
                      policy=HealthPolicy(default_rules())).tick()
    assert tick.action == "rolled_back"
    store.transition("svc", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    monkeypatch.setattr(judge_module, "make_source", lambda kind, url: _Pairs())
    result = CliRunner().invoke(cli, ["health", "svc", "--source", "prometheus"],
                                env={"AURUM_STATE_DIR": str(tmp_path), "COLUMNS": "250"})
    assert "paired:errors" in result.output, result.output
    assert result.exit_code == 1, result.output  # unhealthy, as the controller judged


def test_controller_shadow_step_detection_holds_for_odd_rollouts(tmp_path: Path) -> None:
    for i, rollout in enumerate([Rollout(percent=0, compare=0), Rollout(percent=1, compare=100)]):
        store = FileStore.in_dir(tmp_path / str(i))
        store.transition("svc", Phase.HYBRID, rollout, actor="t", reason="t")
        tick = Controller("svc", store=store, source=_Pairs(), rollback_after=1,
                          policy=HealthPolicy(default_rules())).tick()
        assert not any(r.rule.startswith("paired") for r in tick.verdict.results), rollout


def test_key_and_secret_never_reach_spans(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_CONTEXT_ID_SECRET", "s3cr3t-value-xyz")
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, Phase.HYBRID, Rollout(percent=50, compare=100), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        load, _ = _keyed(store)
        with routing_key("ignored"):
            for user in ("alice@example.com", "bob@example.com"):
                load(user)  # type: ignore[operator]
        telemetry.wait_for_shadows()
        assert telemetry.registry is not None
        assert "s3cr3t" not in repr(telemetry.registry.global_flags)
        text = repr([(dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events])
                     for s in telemetry.spans()])
    assert "example.com" not in text and "s3cr3t" not in text

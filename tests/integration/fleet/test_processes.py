"""A fleet of processes sharing the Redis phase store, against a real redis-server.

Needs ``scripts/redis.sh start`` and ``eval "$(scripts/redis.sh env)"``: the tests that talk to Redis
skip when ``AURUM_TEST_REDIS_URL`` is absent. Each test works under a key prefix of its own. The
outage test stops and restarts that server with ``scripts/redis.sh`` (and always restarts it).
"""


from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

redis = pytest.importorskip("redis")

from aurum_otel import (  # noqa: E402
    ConfigurationError,
    Phase,
    PhaseStore,
    StateError,
    migrated,
    testing,
)
from aurum_otel.stores.redis import RedisStore  # noqa: E402
from tests.integration.fleet.support import (  # noqa: E402
    needs_redis,
)

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- no server needed


def test_a_store_that_never_reached_redis_reports_a_problem_and_calls_run_legacy() -> None:
    store = RedisStore.from_url("redis://:hunter2@127.0.0.1:1/0", initial_wait=2.0)
    try:
        assert isinstance(store, PhaseStore)
        assert "hunter2" not in store.location
        snapshot = store.snapshot()
        assert snapshot.records == {}
        assert isinstance(snapshot.problem, StateError)
        assert "AURUM_STATE_URL" in str(snapshot.problem)
        assert "hunter2" not in str(snapshot.problem)

        @migrated("nowhere")
        def which() -> str:
            return "legacy"

        @which.simplified
        def _which_v2() -> str:
            return "simplified"

        with testing.capture(store=store):
            assert which() == "legacy"
        with pytest.raises(StateError, match="nothing was changed. Check that redis-server"):
            store.transition("nowhere", Phase.SIMPLIFIED, actor="t", reason="t")
    finally:
        store.close()


def test_url_parameters_and_bad_urls() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/3?prefix=p1&history_limit=7&poll_interval=2",
                                start=False)
    assert (store.prefix, store.history_limit, store.poll_interval) == ("p1", 7, 2.0)
    assert store.channel == "p1:transitions"
    store.close()
    with pytest.raises(ConfigurationError, match="AURUM_STATE_URL"):
        RedisStore.from_url("http://127.0.0.1/", start=False)
    with pytest.raises(ConfigurationError, match="AURUM_STATE_URL"):
        RedisStore.from_url("redis://127.0.0.1/0?history_limit=lots", start=False)


# ---------------------------------------------------------------- a fleet of processes

WATCHER = r"""
import json, sys, time
from aurum_otel import Phase, configure, migrated
from aurum_otel.stores.redis import RedisStore

url, name = sys.argv[1], sys.argv[2]
store = RedisStore.from_url(url)
configure(store=store)  # the registry's default refresh interval (AURUM_REFRESH_INTERVAL, 0.5 s)

@migrated(name)
def which():
    return "legacy"

@which.simplified
def _which_v2():
    return "simplified"

assert which() == "legacy"
print("ready", flush=True)
store_seen = call_seen = None
calls = failures = 0
deadline = time.monotonic() + 20
while call_seen is None and time.monotonic() < deadline:
    if store_seen is None:
        record = store.snapshot().get(name)
        if record is not None and record.phase is Phase.SIMPLIFIED:
            store_seen = time.monotonic()
    try:
        calls += 1
        if which() == "simplified":
            call_seen = time.monotonic()
    except Exception:
        failures += 1
    time.sleep(0.001)
print(json.dumps({"store": store_seen, "call": call_seen, "calls": calls, "failures": failures}),
      flush=True)
"""


@needs_redis
def test_four_processes_see_a_transition_within_one_second(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    name = "fleet"
    watchers = [
        subprocess.Popen([sys.executable, "-c", WATCHER, url, name], stdout=subprocess.PIPE,
                         text=True)
        for _ in range(4)
    ]
    try:
        for watcher in watchers:
            assert watcher.stdout is not None
            assert watcher.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # every watcher is now in its call loop
        started = time.monotonic()
        stores(url).transition(name, Phase.SIMPLIFIED, actor="fleet-test", reason="go")
        results = []
        for watcher in watchers:
            assert watcher.stdout is not None
            results.append(json.loads(watcher.stdout.readline()))
            assert watcher.wait(30) == 0
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    assert all(r["store"] is not None and r["call"] is not None for r in results), results
    assert sum(r["failures"] for r in results) == 0
    store_latency = max(r["store"] - started for r in results)
    call_latency = max(r["call"] - started for r in results)
    print(f"\n4 processes: max latency to the store snapshot {store_latency * 1000:.1f} ms, "
          f"to a @migrated call {call_latency * 1000:.1f} ms (registry refresh interval 0.5 s)")
    assert call_latency < 1.0


# ---------------------------------------------------------------- racing controllers

CONTROLLER = r"""
import sys, time
from aurum_otel import Phase, TransitionConflictError
from aurum_otel.stores.redis import RedisStore

url, name, target = sys.argv[1], sys.argv[2], Phase(sys.argv[3])
store = RedisStore.from_url(url)
store.snapshot()
print("ready", flush=True)
for line in sys.stdin:
    start_at = float(line)
    while time.monotonic() < start_at:
        pass
    try:
        store.transition(name, target, actor=f"controller-{target}", reason="race",
                         expected=Phase.LEGACY)
        print("won", flush=True)
    except TransitionConflictError as exc:
        print("conflict", exc.actual, flush=True)
"""


@needs_redis
def test_two_controller_processes_race_and_exactly_one_wins(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    name, rounds = "race", 15
    store = stores(url)
    targets = {"hybrid": Phase.HYBRID, "simplified": Phase.SIMPLIFIED}
    controllers = {
        target: subprocess.Popen([sys.executable, "-c", CONTROLLER, url, name, target],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for target in targets
    }
    wins = dict.fromkeys(targets, 0)
    try:
        for process in controllers.values():
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for _ in range(rounds):
            store.transition(name, Phase.LEGACY, actor="test", reason="reset")
            start_at = time.monotonic() + 0.05  # both start together: a real race
            for process in controllers.values():
                assert process.stdin is not None
                process.stdin.write(f"{start_at}\n")
                process.stdin.flush()
            answers = {}
            for target, process in controllers.items():
                assert process.stdout is not None
                answers[target] = process.stdout.readline().split()
            winners = [target for target, answer in answers.items() if answer == ["won"]]
            assert len(winners) == 1, answers
            (winner,) = winners
            (loser,) = set(targets) - {winner}
            assert answers[loser] == ["conflict", winner]
            wins[winner] += 1
            record = store.refresh().get(name)
            assert record is not None and record.phase is targets[winner]
            assert record.history[-1].actor == f"controller-{winner}"
            assert record.history[-2].reason == "reset"
    finally:
        for process in controllers.values():
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    print(f"\n{rounds} races between two controller processes: wins {wins}")

"""A fleet of processes sharing the Redis phase store, against a real redis-server.

Needs ``scripts/redis.sh start`` and ``eval "$(scripts/redis.sh env)"``: the tests that talk to Redis
skip when ``AURUM_TEST_REDIS_URL`` is absent. Each test works under a key prefix of its own. The
outage test stops and restarts that server with ``scripts/redis.sh`` (and always restarts it).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from aurum_otel import (  # noqa: E402
    ConfigurationError,
    Phase,
    PhaseStore,
    Rollout,
    StateError,
    TransitionConflictError,
    migrated,
    testing,
)
from aurum_otel import registry as registry_module  # noqa: E402
from aurum_otel.stores.redis import RedisStore  # noqa: E402
from aurum_otel.stores.url import store_from_url  # noqa: E402

URL = os.environ.get("AURUM_TEST_REDIS_URL", "")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis.sh"
# Read at import, before the autouse fixture strips AURUM_* from the environment: the script must
# restart the server these tests were pointed at (AURUM_CACHE_DIR, port), not the default one.
SCRIPT_ENV = {**os.environ}

needs_redis = pytest.mark.skipif(
    not URL, reason="no Redis: run scripts/redis.sh start and eval \"$(scripts/redis.sh env)\""
)
pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    """The test server's URL under a key prefix of this test's own; the keys are deleted after."""
    prefix = f"aurum-test-{uuid.uuid4().hex[:10]}"
    yield f"{URL}{'&' if '?' in URL else '?'}prefix={prefix}"
    try:
        client = redis.Redis.from_url(URL, socket_connect_timeout=2)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@pytest.fixture
def stores() -> Iterator[Callable[..., RedisStore]]:
    made: list[RedisStore] = []

    def make(url: str, **options: Any) -> RedisStore:
        store = RedisStore.from_url(url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def last_actor(store: RedisStore, name: str) -> str | None:
    record = store.snapshot().get(name)
    return record.history[-1].actor if record is not None and record.history else None


def redis_sh(command: str) -> None:
    subprocess.run(["bash", str(SCRIPT), command], env=SCRIPT_ENV, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)


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


@needs_redis
def test_racing_threads_with_expected_exactly_one_wins(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    name = "threads"
    contenders = [stores(url) for _ in range(4)]
    targets = [Phase.HYBRID, Phase.SIMPLIFIED, Phase.HYBRID, Phase.SIMPLIFIED]
    def contend(barrier: threading.Barrier, outcomes: list[str], store: RedisStore,
                target: Phase) -> None:
        barrier.wait()
        try:
            store.transition(name, target, actor="c", reason="race", expected=Phase.LEGACY)
            outcomes.append("won")
        except TransitionConflictError:
            outcomes.append("conflict")

    for _ in range(10):
        contenders[0].transition(name, Phase.LEGACY, actor="test", reason="reset")
        barrier = threading.Barrier(len(contenders))
        outcomes: list[str] = []
        threads = [threading.Thread(target=contend, args=(barrier, outcomes, store, target))
                   for store, target in zip(contenders, targets, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(outcomes) == ["conflict"] * 3 + ["won"]


@needs_redis
def test_without_expected_concurrent_transitions_serialize_and_none_is_lost(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    name, writers, each = "serial", 4, 25
    instances = [stores(url) for _ in range(writers)]

    def write(store: RedisStore, index: int) -> None:
        for step in range(each):
            phase = (Phase.LEGACY, Phase.HYBRID, Phase.SIMPLIFIED)[step % 3]
            store.transition(name, phase, Rollout(percent=step), actor=f"w{index}",
                             reason=str(step))

    threads = [threading.Thread(target=write, args=(store, i)) for i, store in enumerate(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    record = instances[0].refresh().get(name)
    assert record is not None and len(record.history) == writers * each
    # Each transition's "from" is the previous one's "to": nothing was lost or interleaved.
    for before, after in zip(record.history, record.history[1:], strict=False):
        assert after.from_phase is before.to_phase
    client = redis.Redis.from_url(url.split("?")[0], decode_responses=True)
    prefix = url.split("prefix=")[1]
    assert client.hget(f"{prefix}:migration:{name}", "version") == str(writers * each)
    client.close()


@needs_redis
def test_history_is_capped_and_records_round_trip(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    store = stores(f"{url}&history_limit=3")
    for percent in (10, 20, 30, 40, 50):
        store.transition("capped", Phase.HYBRID, Rollout(percent=percent, compare=7, fallback=True),
                         actor="op", reason=f"to {percent}")
    record = store.snapshot().get("capped")
    assert record is not None
    assert record.rollout == Rollout(percent=50, compare=7, fallback=True)
    assert [t.reason for t in record.history] == ["to 30", "to 40", "to 50"]
    other = stores(url)
    assert other.snapshot().get("capped") == record


@needs_redis
def test_a_corrupt_record_is_its_own_problem_until_the_next_transition(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    store = stores(url)
    store.transition("broken", Phase.SIMPLIFIED, actor="op", reason="go")
    prefix = url.split("prefix=")[1]
    client = redis.Redis.from_url(URL, decode_responses=True)
    client.hset(f"{prefix}:migration:broken", mapping={"phase": "turbo", "version": "2"})
    client.hset(f"{prefix}:migrations", "broken", "2")
    client.close()
    wait_for(lambda: "broken" in store.refresh().corrupt)
    assert store.snapshot().problem is None  # only its own migration is affected
    assert "turbo" in store.snapshot().corrupt["broken"]
    store.transition("broken", Phase.LEGACY, actor="op", reason="repair")
    assert store.snapshot().corrupt == {}
    record = store.snapshot().get("broken")
    assert record is not None and record.phase is Phase.LEGACY


# ---------------------------------------------------------------- Redis goes away


@needs_redis
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_calls_go_on_while_redis_is_down_and_the_store_reconnects(
    url: str, stores: Callable[..., RedisStore], how: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = "outage"
    store = stores(url)
    writer = stores(url)

    @migrated(name)
    def which() -> str:
        return "legacy"

    @which.simplified
    def _which_v2() -> str:
        return "simplified"

    results: dict[str, int] = {}
    failures: list[BaseException] = []
    stop = threading.Event()

    def call_forever() -> None:
        while not stop.is_set():
            try:
                result = which()
                results[result] = results.get(result, 0) + 1
            except BaseException as exc:
                failures.append(exc)
            time.sleep(0.001)

    with testing.capture(store=store, refresh_interval=0.05):
        writer.transition(name, Phase.SIMPLIFIED, actor="op", reason="before the outage")
        wait_for(lambda: which() == "simplified", timeout=2.0)
        caller = threading.Thread(target=call_forever)
        caller.start()
        try:
            with caplog.at_level(logging.WARNING, logger="aurum_otel.store"):
                redis_sh(how)
                try:
                    wait_for(lambda: not store.connected, timeout=5.0)
                    time.sleep(1.5)  # calls go on against a dead Redis
                    down = dict(results)
                    snapshot = store.snapshot()
                    assert snapshot.problem is None
                    assert snapshot.get(name) is not None
                    with pytest.raises(StateError, match="is unreachable") as raised:
                        writer.transition(name, Phase.LEGACY, actor="op", reason="while down")
                    assert "AURUM_STATE_URL" in str(raised.value)
                finally:
                    redis_sh("start")
                reconnected = wait_for(lambda: store.connected, timeout=10.0)
                started = time.monotonic()
                writer.transition(name, Phase.LEGACY, actor="after-restart", reason="new")
                wait_for(lambda: last_actor(store, name) == "after-restart", timeout=5.0)
                seen = time.monotonic() - started
                wait_for(lambda: which() == "legacy", timeout=2.0)
                served = time.monotonic() - started
        finally:
            stop.set()
            caller.join(10)
    assert failures == [], failures[:3]
    assert set(down) == {"simplified"} and down["simplified"] > 100, down
    assert any("unreachable" in r.getMessage() for r in caplog.records)
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    print(f"\nredis {how}: {sum(results.values())} calls, 0 failures, "
          f"{down['simplified']} served on the last phase while down; the store reconnected "
          f"{reconnected * 1000:.0f} ms after redis.sh start returned; a new transition (written "
          f"from another store) reached its snapshot in {seen * 1000:.0f} ms and the calls in "
          f"{served * 1000:.0f} ms")


# ---------------------------------------------------------------- wiring into the registry


def use_state_url(monkeypatch: pytest.MonkeyPatch, url: str, state_dir: Path) -> None:
    """AURUM_STATE_URL=url, which store_from_url turns into a RedisStore."""
    monkeypatch.setenv("AURUM_STATE_URL", url)
    store = store_from_url(url, state_dir)
    assert isinstance(store, RedisStore)
    store.close()


@needs_redis
def test_aurum_state_url_selects_the_redis_store(
    url: str, stores: Callable[..., RedisStore], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_state_url(monkeypatch, url, tmp_path)
    testing.reset()

    @migrated("wired")
    def which() -> str:
        return "legacy"

    @which.simplified
    def _which_v2() -> str:
        return "simplified"

    try:
        store = registry_module.get_registry().store
        assert isinstance(store, RedisStore) and store.prefix in url
        assert which() == "legacy"
        stores(url).transition("wired", Phase.SIMPLIFIED, actor="op", reason="go")
        latency = wait_for(lambda: which() == "simplified", timeout=2.0)
        assert latency < 1.0
    finally:
        store = registry_module.get_registry().store
        testing.reset()
        if isinstance(store, RedisStore):
            store.close()


@needs_redis
def test_a_store_listener_makes_the_registry_re_resolve_at_once(
    url: str, stores: Callable[..., RedisStore]
) -> None:
    # The registry hook proposed for fleets: store.add_listener(registry.invalidate).
    store = stores(url)

    @migrated("pushed")
    def which() -> str:
        return "legacy"

    @which.simplified
    def _which_v2() -> str:
        return "simplified"

    with testing.capture(store=store, refresh_interval=30.0) as telemetry:
        assert telemetry.registry is not None
        store.add_listener(telemetry.registry.invalidate)
        assert which() == "legacy"
        started = time.monotonic()
        stores(url).transition("pushed", Phase.SIMPLIFIED, actor="op", reason="go")
        latency = wait_for(lambda: which() == "simplified", timeout=2.0)
    print(f"\nwith the listener hook a call saw the transition after {latency * 1000:.1f} ms "
          f"({(time.monotonic() - started) * 1000:.1f} ms after it was written), "
          "refresh interval 30 s")
    assert latency < 1.0

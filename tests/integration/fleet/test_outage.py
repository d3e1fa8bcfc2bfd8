"""The Redis store through an outage, and wired into the registry by AURUM_STATE_URL (against a
real redis-server; the outage test stops and restarts it with ``scripts/redis.sh``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

from aurum_otel import (  # noqa: E402
    Phase,
    StateError,
    migrated,
    testing,
)
from aurum_otel import registry as registry_module  # noqa: E402
from aurum_otel.stores.redis import RedisStore  # noqa: E402
from aurum_otel.stores.url import store_from_url  # noqa: E402
from tests.integration.fleet.support import (  # noqa: E402
    last_actor,
    needs_redis,
    redis_sh,
    wait_for,
)

pytestmark = pytest.mark.integration


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

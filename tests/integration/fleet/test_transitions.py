"""Transitions on the shared Redis store: races, serialization, history, corrupt records
(against a real redis-server; see support.py and conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

redis = pytest.importorskip("redis")

from aurum_otel import (  # noqa: E402
    Phase,
    Rollout,
    TransitionConflictError,
)
from aurum_otel.stores.redis import RedisStore  # noqa: E402
from tests.integration.fleet.support import (  # noqa: E402
    URL,
    needs_redis,
    wait_for,
)

pytestmark = pytest.mark.integration


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

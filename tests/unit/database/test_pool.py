"""database.pool: the legacy client's connection pool."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from aurum_otel.database import (
    PoolPolicy,
    PoolTimeoutError,
)
from aurum_otel.database.pool import ConnectionPool
from tests.unit.database.fakes import (
    TRINO,
    Clock,
    FakeDB,
)


def test_pool_bounds_connections_and_times_out() -> None:
    db = FakeDB()
    pool = ConnectionPool(lambda: db.connect(TRINO), PoolPolicy(max_size=2, checkout_timeout=0.05))
    first, second = pool.checkout(), pool.checkout()
    started = time.monotonic()
    with pytest.raises(PoolTimeoutError) as caught:
        pool.checkout()
    assert 0.04 <= time.monotonic() - started < 1.0
    assert caught.value.resource == "connection" and caught.value.limit == 2
    pool.release(second)
    assert pool.checkout().connection is second.connection  # reused, not reopened
    pool.release(first)
    assert len(db.connections) == 2


def test_pool_waiter_gets_a_released_connection() -> None:
    db = FakeDB()
    pool = ConnectionPool(lambda: db.connect(TRINO), PoolPolicy(max_size=1, checkout_timeout=2))
    held = pool.checkout()
    threading.Timer(0.05, pool.release, args=(held,)).start()
    assert pool.checkout().connection is held.connection


def test_pool_closes_idle_connections_beyond_min_size() -> None:
    clock = Clock()
    db = FakeDB()
    pool = ConnectionPool(
        lambda: db.connect(TRINO), PoolPolicy(min_size=1, max_size=3, idle_timeout=60),
        clock=clock,
    )
    held = [pool.checkout() for _ in range(3)]
    for pooled in held:
        pool.release(pooled)
    clock.advance(61)
    pool.checkout()
    assert db.closed == 2 and pool.size == 1


def test_pool_health_checks_idle_connections_and_replaces_bad_ones() -> None:
    clock = Clock()
    db = FakeDB()
    checked: list[object] = []

    def health(connection: Any) -> None:
        checked.append(connection)
        if len(checked) == 1:
            raise ConnectionResetError("gone")

    pool = ConnectionPool(
        lambda: db.connect(TRINO), PoolPolicy(health_check_after=10), health_check=health,
        clock=clock,
    )
    first = pool.checkout()
    pool.release(first)
    clock.advance(5)
    assert pool.checkout().connection is first.connection and checked == []  # fresh: unchecked
    pool.release(first)
    clock.advance(10)
    replacement = pool.checkout()
    assert checked == [first.connection]
    assert replacement.connection is not first.connection and first.connection.closed

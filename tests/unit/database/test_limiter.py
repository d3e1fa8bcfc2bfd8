"""database.limiter: the concurrency limit on statements in flight."""

from __future__ import annotations

import threading
import time

import pytest

from aurum_otel.database import (
    BreakerState,
    PoolTimeoutError,
)
from aurum_otel.database.limiter import ConcurrencyLimiter
from tests.unit.database.fakes import (
    FakeDB,
    legacy_client,
)


def test_concurrency_limit_queues_then_times_out() -> None:
    limiter = ConcurrencyLimiter(1, queue_timeout=0.05)
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter.slot():
            inside.set()
            leave.wait(2)

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait(2)
    with pytest.raises(PoolTimeoutError) as caught, limiter.slot():
        pass
    assert caught.value.resource == "query slot"
    leave.set()
    worker.join()
    with limiter.slot():
        assert limiter.in_flight == 1


def test_legacy_client_limits_statements_in_flight() -> None:
    db = FakeDB()
    db.delay = 0.3
    client = legacy_client(db, max_concurrency=1, queue_timeout=0.05)
    errors: list[BaseException] = []
    worker = threading.Thread(target=client.query, args=("SELECT 1",))
    worker.start()
    time.sleep(0.05)
    try:
        client.query("SELECT 2")
    except PoolTimeoutError as exc:
        errors.append(exc)
    worker.join()
    assert len(errors) == 1 and db.statements == ["SELECT 1"]
    assert client.breaker.state is BreakerState.CLOSED  # a local limit says nothing of the server

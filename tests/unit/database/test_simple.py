"""database.simple: the simple client."""

from __future__ import annotations

import pytest

from aurum_otel.database import (
    DatabaseUnavailableError,
    SimpleTrinoClient,
)
from tests.unit.database.fakes import (
    TRINO,
    FakeDB,
    dropped_mid_query,
)


def test_simple_client_connects_lazily_and_keeps_one_connection() -> None:
    db = FakeDB()
    client = SimpleTrinoClient(TRINO, connect=db.connect)
    assert db.connections == []
    client.query("SELECT 1")
    client.query("SELECT 2")
    assert len(db.connections) == 1


def test_simple_client_reconnects_once_on_a_dropped_connection() -> None:
    db = FakeDB()
    client = SimpleTrinoClient(TRINO, connect=db.connect)
    db.fail(dropped_mid_query())
    assert client.query("SELECT 1") == [(1, "a"), (2, "b")]
    assert len(db.connections) == 2 and db.connections[0].closed and client.reconnects == 1

    db.fail(dropped_mid_query(), dropped_mid_query())
    with pytest.raises(DatabaseUnavailableError):
        client.query("SELECT 1")
    assert len(db.statements) == 4  # one reconnect, then it gives up


def test_simple_client_does_not_repeat_a_write_that_may_have_landed() -> None:
    db = FakeDB()
    client = SimpleTrinoClient(TRINO, connect=db.connect)
    db.fail(dropped_mid_query())
    with pytest.raises(DatabaseUnavailableError):
        client.execute("INSERT INTO t VALUES (1)")
    assert len(db.statements) == 1

"""database.legacy: the legacy client (connections, results, time limits)."""

from __future__ import annotations

import time

import pytest

from aurum_otel.database import (
    DatabaseError,
    LegacyOptions,
    LegacyTrinoClient,
    QueryTimeoutError,
    RetryPolicy,
    SimpleTrinoClient,
)
from tests.unit.database.fakes import (
    FakeDB,
    dropped_mid_query,
    legacy_client,
    memory_config,
    syntax_error,
)


def test_sqlite_results_carry_columns_and_ordering(
    sqlite_clients: tuple[LegacyTrinoClient, SimpleTrinoClient],
) -> None:
    legacy, simple = sqlite_clients
    rows = legacy.query("SELECT id, name FROM curves WHERE price > ? ORDER BY id DESC", (2,))
    assert rows == [(4, "c4"), (3, "c3"), (2, "c2")]
    assert rows.columns == ("id", "name") and rows.ordered
    unordered = simple.query("SELECT id FROM curves")
    assert not unordered.ordered and sorted(unordered) == [(i,) for i in range(5)]


def test_failed_connections_are_discarded_and_user_errors_keep_theirs() -> None:
    db = FakeDB()
    db.fail(dropped_mid_query())
    client = legacy_client(db)
    client.query("SELECT 1")
    assert db.closed == 1 and client.pool.size == 1
    db.fail(syntax_error())
    with pytest.raises(DatabaseError):
        client.query("SELECT 1")
    assert db.closed == 1 and client.pool.size == 1


def test_query_timeout_cancels_a_runaway_sqlite_query() -> None:
    config = memory_config()
    client = LegacyTrinoClient(
        config, options=LegacyOptions(query_timeout=0.2, retry=RetryPolicy(max_attempts=1))
    )
    forever = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
               "SELECT count(*) FROM n")
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError) as caught:
        client.query(forever)
    assert time.monotonic() - started < 2.0
    assert caught.value.timeout == 0.2 and "SELECT exceeded its 0.2s time limit" in str(caught.value)
    assert client.pool.discarded == 1  # the interrupted connection is not reused
    assert client.query("SELECT 42") == [(42,)]
    client.close()

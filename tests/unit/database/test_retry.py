"""database.retry: which statements are retried, and the backoff."""

from __future__ import annotations

import sqlite3

import pytest
import trino.auth
import trino.exceptions

from aurum_otel.database import (
    DatabaseError,
    DatabaseUnavailableError,
    ErrorKind,
    RetryPolicy,
)
from tests.unit.database.fakes import (
    FakeDB,
    dropped_mid_query,
    legacy_client,
    refused,
    syntax_error,
)


def test_reads_are_retried_on_transient_errors_with_bounded_backoff() -> None:
    db = FakeDB()
    db.fail(dropped_mid_query(), trino.exceptions.Http503Error("error 503"))
    sleeps: list[float] = []
    client = legacy_client(db, sleeps=sleeps)
    assert client.query("SELECT id, name FROM t") == [(1, "a"), (2, "b")]
    assert len(db.statements) == 3
    # rand() = 1 gives each cap: 0.1 * 2**0, then 0.1 * 2**1 clamped to max_delay 0.15.
    assert sleeps == [0.1, 0.15]


def test_backoff_is_full_jitter_below_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=1.0)
    for attempt in range(1, 10):
        cap = min(1.0, 0.05 * 2 ** (attempt - 1))
        assert policy.backoff(attempt, lambda: 0.0) == 0.0
        assert policy.backoff(attempt, lambda: 0.999) <= cap
        assert policy.backoff(attempt, lambda: 0.5) == pytest.approx(cap / 2)


def test_retries_stop_at_max_attempts_and_raise_unavailable() -> None:
    db = FakeDB()
    db.fail(*(dropped_mid_query() for _ in range(5)))
    sleeps: list[float] = []
    client = legacy_client(db, sleeps=sleeps)
    with pytest.raises(DatabaseUnavailableError) as caught:
        client.query("SELECT 1")
    assert len(db.statements) == 3 and len(sleeps) == 2
    assert isinstance(caught.value.__cause__, trino.exceptions.TrinoConnectionError)
    assert "check that the server is up" in str(caught.value)


@pytest.mark.parametrize(
    "error", [syntax_error(), sqlite3.OperationalError("no such table: curvez")],
    ids=["trino-syntax", "sqlite-missing-table"],
)
def test_user_errors_are_never_retried(error: BaseException) -> None:
    db = FakeDB()
    db.fail(error)
    sleeps: list[float] = []
    client = legacy_client(db, sleeps=sleeps)
    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT * FROM curvez")
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert caught.value.kind is ErrorKind.FATAL
    assert len(db.statements) == 1 and sleeps == []


def test_a_write_is_retried_only_when_it_never_reached_the_server() -> None:
    db = FakeDB()
    db.fail(refused())
    client = legacy_client(db)
    assert client.execute("INSERT INTO t VALUES (1)") == 1
    assert len(db.statements) == 2  # refused: not sent, so retried

    db.fail(dropped_mid_query())
    with pytest.raises(DatabaseUnavailableError):
        client.execute("INSERT INTO t VALUES (2)")
    assert len(db.statements) == 3  # may have been applied: not retried


def test_sqlite_lock_is_retried() -> None:
    db = FakeDB()
    db.fail(sqlite3.OperationalError("database is locked"))
    client = legacy_client(db)
    assert client.execute("INSERT INTO t VALUES (1)") == 1
    assert len(db.statements) == 2

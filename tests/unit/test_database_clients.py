"""The database migration's clients: pool, retries, breaker, limits, cache, spans, routing."""

from __future__ import annotations

import copy
import logging
import sqlite3
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trino.auth
import trino.exceptions
from pydantic import SecretStr

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, testing
from aurum_otel.database import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    ConnectionConfig,
    DatabaseError,
    DatabaseUnavailableError,
    ErrorKind,
    LegacyOptions,
    LegacyTrinoClient,
    PoolPolicy,
    PoolTimeoutError,
    QueryTimeoutError,
    RetryPolicy,
    Rows,
    SimpleTrinoClient,
    classify,
    connection_config,
    get_trino_client,
    rows_comparator,
    sqlite_connect,
    trino_connect,
)
from aurum_otel.database.limiter import ConcurrencyLimiter
from aurum_otel.database.pool import ConnectionPool
from aurum_otel.database.sql import has_top_level_order_by, operation_name, sanitize
from aurum_otel.settings import AurumSettings, TrinoSettings

CANARY = "canary-Pa55word-db-91c2"


# --- fakes -----------------------------------------------------------------------------------


class FakeDB:
    """A scripted DB-API backend: each statement pops the next planned error, if any."""

    def __init__(self, rows: Sequence[tuple[Any, ...]] = ((1, "a"), (2, "b"))) -> None:
        self.rows = list(rows)
        self.columns = ("id", "name")
        self.errors: list[BaseException] = []
        self.statements: list[str] = []
        self.connections: list[FakeConnection] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def connect(self, config: ConnectionConfig) -> FakeConnection:
        connection = FakeConnection(self)
        self.connections.append(connection)
        return connection

    def fail(self, *errors: BaseException) -> None:
        self.errors.extend(errors)

    @property
    def closed(self) -> int:
        return sum(1 for c in self.connections if c.closed)


class FakeCursor:
    def __init__(self, db: FakeDB) -> None:
        self.db = db
        self.description: list[tuple[str, ...]] | None = None
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, operation: str, parameters: Any = None) -> None:
        with self.db.lock:
            self.db.statements.append(operation)
            error = self.db.errors.pop(0) if self.db.errors else None
        if self.db.delay:
            time.sleep(self.db.delay)
        if error is not None:
            raise error
        if operation.lstrip().upper().startswith("INSERT"):
            self.rowcount = 1
        else:
            self._rows = list(self.db.rows)
            self.description = [(name,) for name in self.db.columns]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        pass


class FakeConnection:
    def __init__(self, db: FakeDB) -> None:
        self.db = db
        self.closed = False

    def cursor(self) -> FakeCursor:
        if self.closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return FakeCursor(self.db)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def refused() -> BaseException:
    return trino.exceptions.TrinoConnectionError(
        "failed to execute: HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded "
        "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] "
        "Connection refused'))"
    )


def dropped_mid_query() -> BaseException:
    return trino.exceptions.TrinoConnectionError("failed to fetch: Connection aborted.")


def syntax_error() -> BaseException:
    return trino.exceptions.TrinoUserError(
        {"errorName": "SYNTAX_ERROR", "errorType": "USER_ERROR",
         "message": "line 1:8: mismatched input 'FORM'"}, "20250101_000000_00001_abcde",
    )


TRINO = ConnectionConfig(host="trino.test", port=8443, password=SecretStr(CANARY),
                         http_scheme="https", catalog="iceberg", schema="market")


def legacy_client(
    db: FakeDB, *, clock: Callable[[], float] = time.monotonic, sleeps: list[float] | None = None,
    rand: Callable[[], float] = lambda: 1.0, **changes: Any,
) -> LegacyTrinoClient:
    options = LegacyOptions(retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.15))
    return LegacyTrinoClient(
        TRINO, connect=db.connect, options=options.copy(**changes), clock=clock,
        sleep=(sleeps.append if sleeps is not None else lambda _: None), rand=rand,
    )


def memory_config() -> ConnectionConfig:
    # A private shared-cache database per test, so tests never see each other's tables.
    return ConnectionConfig.sqlite(f"file:test-{uuid.uuid4().hex}?mode=memory&cache=shared")


@pytest.fixture
def sqlite_clients() -> Iterator[tuple[LegacyTrinoClient, SimpleTrinoClient]]:
    config = memory_config()
    legacy = LegacyTrinoClient(config)
    simple = SimpleTrinoClient(config)
    legacy.execute("CREATE TABLE curves (id INTEGER, name TEXT, price REAL)")
    for i in range(5):
        legacy.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", i * 1.5))
    yield legacy, simple
    legacy.close()
    simple.close()


# --- SQL, Rows and the comparator ------------------------------------------------------------


def test_sanitize_replaces_every_literal_and_drops_comments() -> None:
    sql = ("SELECT * FROM t1 WHERE name = 'O''Brien' AND x > 3.5e2 -- note\n"
           "AND d = DATE '2024-01-01' AND k IN (1, 2) /* c */ LIMIT 10")
    assert sanitize(sql) == (
        "SELECT * FROM t1 WHERE name = ? AND x > ? AND d = DATE ? AND k IN (?, ?) LIMIT ?"
    )
    assert sanitize(f"SELECT '{CANARY}'") == "SELECT ?"


@pytest.mark.parametrize(
    ("sql", "operation"),
    [("select 1", "SELECT"), ("  INSERT INTO t VALUES (1)", "INSERT"),
     ("WITH a AS (SELECT 1) SELECT * FROM a", "SELECT"), ("-- c\nDELETE FROM t", "DELETE")],
)
def test_operation_name(sql: str, operation: str) -> None:
    assert operation_name(sql) == operation


@pytest.mark.parametrize(
    ("sql", "ordered"),
    [("SELECT * FROM t ORDER BY 1", True),
     ("SELECT a FROM t order\n by a DESC LIMIT 3", True),
     ("SELECT rank() OVER (ORDER BY x) FROM t", False),
     ("SELECT * FROM (SELECT * FROM t ORDER BY x) s", False),
     ("SELECT 'order by' FROM t", False)],
    ids=["plain", "multiline", "window", "subquery", "literal"],
)
def test_top_level_order_by(sql: str, ordered: bool) -> None:
    assert has_top_level_order_by(sql) is ordered


def test_rows_survive_deepcopy_and_compare_equal_to_lists() -> None:
    rows = Rows([(1, "a"), (2, "b")], ("id", "name"), ordered=True)
    clone = copy.deepcopy(rows)
    assert isinstance(clone, Rows) and clone.columns == ("id", "name") and clone.ordered
    assert clone == [(1, "a"), (2, "b")]
    assert rows.dicts() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_unordered_rows_match_in_any_order() -> None:
    a = Rows([(1, "a"), (2, "b")], ("id", "name"))
    b = Rows([(2, "b"), (1, "a")], ("id", "name"))
    assert rows_comparator(a, b).equal


def test_ordered_rows_must_keep_their_order() -> None:
    a = Rows([(1, "a"), (2, "b")], ("id", "name"), ordered=True)
    b = Rows([(2, "b"), (1, "a")], ("id", "name"), ordered=True)
    result = rows_comparator(a, b)
    assert not result.equal
    assert result.differences[0] == (
        "rows: the same rows in a different order (the query has ORDER BY)"
    )


@pytest.mark.parametrize("ordered", [False, True], ids=["unordered", "ordered"])
def test_a_dropped_row_is_detected(ordered: bool) -> None:
    a = Rows([(1, "a"), (2, "b")], ("id", "name"), ordered=ordered)
    b = Rows([(1, "a")], ("id", "name"), ordered=ordered)
    result = rows_comparator(a, b)
    assert not result.equal
    assert "row only in authoritative (x1): (2, 'b')" in result.differences


def test_a_dropped_column_is_detected() -> None:
    a = Rows([(1, "a")], ("id", "name"))
    b = Rows([(1,)], ("id",))
    result = rows_comparator(a, b)
    assert not result.equal
    assert result.differences[0] == "columns: ('id', 'name') != ('id',)"


def test_sqlite_results_carry_columns_and_ordering(
    sqlite_clients: tuple[LegacyTrinoClient, SimpleTrinoClient],
) -> None:
    legacy, simple = sqlite_clients
    rows = legacy.query("SELECT id, name FROM curves WHERE price > ? ORDER BY id DESC", (2,))
    assert rows == [(4, "c4"), (3, "c3"), (2, "c2")]
    assert rows.columns == ("id", "name") and rows.ordered
    unordered = simple.query("SELECT id FROM curves")
    assert not unordered.ordered and sorted(unordered) == [(i,) for i in range(5)]


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [(refused(), ErrorKind.NOT_SENT),
     (dropped_mid_query(), ErrorKind.TRANSIENT),
     (trino.exceptions.Http503Error("error 503"), ErrorKind.TRANSIENT),
     (sqlite3.OperationalError("database is locked"), ErrorKind.NOT_SENT),
     (sqlite3.OperationalError('near "FORM": syntax error'), ErrorKind.FATAL),
     (syntax_error(), ErrorKind.FATAL),
     (trino.exceptions.TrinoExternalError({"errorName": "SERVER_STARTING_UP"}), ErrorKind.NOT_SENT),
     (trino.exceptions.HttpError("error 401: b'Unauthorized'"), ErrorKind.FATAL)],
    ids=["refused", "dropped", "503", "locked", "sqlite-syntax", "trino-syntax", "starting",
         "401"],
)
def test_classify(error: BaseException, kind: ErrorKind) -> None:
    assert classify(error) is kind


# --- retries ---------------------------------------------------------------------------------


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


# --- circuit breaker -------------------------------------------------------------------------


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    clock = Clock()
    db = FakeDB()
    client = legacy_client(
        db, clock=clock, breaker=BreakerPolicy(failure_threshold=3, reset_timeout=30.0),
    )
    db.fail(*(dropped_mid_query() for _ in range(3)))
    with pytest.raises(DatabaseUnavailableError):
        client.query("SELECT 1")  # three attempts, three failures: the breaker opens
    assert client.breaker.state is BreakerState.OPEN

    sleeps: list[float] = []
    client._sleep = sleeps.append
    with pytest.raises(CircuitOpenError) as caught:
        client.query("SELECT 1")
    assert len(db.statements) == 3 and sleeps == []  # failed fast: no call, no retry
    assert caught.value.retry_after == pytest.approx(30.0)

    clock.advance(30.0)
    assert client.breaker.state is BreakerState.HALF_OPEN
    assert client.query("SELECT 1") == [(1, "a"), (2, "b")]
    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.opened == 1 and client.breaker.closed == 1


def test_a_failed_trial_reopens_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, reset_timeout=5.0), clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(5.0)
    breaker.acquire()  # the one trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire()  # a second concurrent trial is refused
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(4.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_user_errors_do_not_open_the_breaker() -> None:
    db = FakeDB()
    client = legacy_client(db, breaker=BreakerPolicy(failure_threshold=2))
    db.fail(syntax_error(), syntax_error(), syntax_error())
    for _ in range(3):
        with pytest.raises(DatabaseError):
            client.query("SELECT FORM t")
    assert client.breaker.state is BreakerState.CLOSED


# --- pool, concurrency limit, timeouts -------------------------------------------------------


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


# --- read cache ------------------------------------------------------------------------------


def test_ttl_cache_serves_reads_until_expiry_and_writes_clear_it() -> None:
    clock = Clock()
    db = FakeDB()
    client = legacy_client(db, clock=clock, cache_ttl=10.0)
    first = client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    first.append((99, "mutated by the caller"))
    again = client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 1 and again == [(1, "a"), (2, "b")]
    client.query("SELECT id, name FROM t WHERE id > ?", (1,))  # other params: a miss
    assert len(db.statements) == 2
    clock.advance(10.0)
    client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 3
    client.execute("INSERT INTO t VALUES (3, 'c')")
    client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 5


# --- the simple client -----------------------------------------------------------------------


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


def test_both_clients_raise_the_same_type_for_the_same_failure() -> None:
    raised = []
    for make in (lambda db: legacy_client(db), lambda db: SimpleTrinoClient(TRINO, connect=db.connect)):
        db = FakeDB()
        db.fail(syntax_error())
        with pytest.raises(DatabaseError) as caught:
            make(db).query("SELECT FORM t")
        raised.append(type(caught.value))
    assert raised == [DatabaseError, DatabaseError]


# --- connect functions and secrets -----------------------------------------------------------


def test_config_repr_never_shows_the_password() -> None:
    assert CANARY not in repr(TRINO) and CANARY not in str(TRINO)
    assert TRINO.namespace == "iceberg.market"


def test_trino_connect_refuses_a_password_over_http() -> None:
    with pytest.raises(ConfigurationError) as caught:
        trino_connect(TRINO.copy(http_scheme="http"))
    assert caught.value.variable == "AURUM_TRINO__HTTP_SCHEME"
    assert "AURUM_TRINO__HTTP_SCHEME=https" in str(caught.value)
    assert CANARY not in str(caught.value)


def test_trino_connect_uses_basic_auth_over_https_without_a_request() -> None:
    connection: Any = trino_connect(TRINO)
    assert isinstance(connection.auth, trino.auth.BasicAuthentication)
    assert connection.http_scheme == "https" and connection.max_attempts == 1
    assert connection.catalog == "iceberg" and connection.schema == "market"
    connection.close()


def test_driver_messages_are_scrubbed_of_the_password() -> None:
    db = FakeDB()
    db.fail(*(trino.exceptions.TrinoConnectionError(
        f"failed to execute: https://aurum:{CANARY}@trino.test:8443/v1/statement refused"
    ) for _ in range(6)))
    for client in (legacy_client(db), SimpleTrinoClient(TRINO, connect=db.connect)):
        with pytest.raises(DatabaseUnavailableError) as caught:
            client.query("SELECT 1")
        assert CANARY not in str(caught.value) and "<redacted>" in str(caught.value)


# --- routing, spans and shadows --------------------------------------------------------------


def set_phase(state_dir: Path, phase: Phase, rollout: Rollout | None = None) -> None:
    FileStore.in_dir(state_dir).transition("database", phase, rollout, actor="test", reason="test")


def test_connection_config_falls_back_to_sqlite_without_trino(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert connection_config("iceberg").system == "sqlite"
    monkeypatch.setenv("AURUM_TRINO__HOST", "trino.internal")
    config = connection_config("hive")
    assert (config.system, config.host, config.catalog) == ("trino", "trino.internal", "hive")
    monkeypatch.setenv("AURUM_DATABASE_URL", "sqlite:///data/aurum.db")
    assert connection_config().path == "data/aurum.db"
    monkeypatch.delenv("AURUM_DATABASE_URL")
    explicit = AurumSettings(trino=TrinoSettings(host="localhost"))
    assert connection_config(settings=explicit).system == "trino"


def test_bad_database_url_is_a_configuration_error_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AURUM_DATABASE_URL", f"sqlite:memory:{CANARY}")
    with pytest.raises(ConfigurationError) as caught:
        get_trino_client()
    assert caught.value.variable == "AURUM_DATABASE_URL" and CANARY not in str(caught.value)


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    name = f"file:routed-{uuid.uuid4().hex}?mode=memory&cache=shared"
    monkeypatch.setenv("AURUM_DATABASE_URL", f"sqlite:///{name}")
    client = get_trino_client("iceberg")
    client.legacy_client.execute("CREATE TABLE curves (id INTEGER, name TEXT, price REAL)")
    for i in range(4):
        client.legacy_client.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", i * 2.0))
    yield client
    client.close()


def test_db_spans_are_children_of_the_migration_span(routed: Any, tmp_path: Path) -> None:
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        rows = routed.query("SELECT id, name FROM curves WHERE name <> 'c9' ORDER BY id")
        telemetry.wait_for_shadows()
        assert rows == [(0, "c0"), (1, "c1"), (2, "c2"), (3, "c3")]
        (migrate,) = telemetry.spans("migrate database")
        (shadow,) = telemetry.spans("shadow database")
        db_spans = telemetry.spans("SELECT iceberg.market")
    assert len(db_spans) == 2
    parents = {span.parent.span_id for span in db_spans if span.parent is not None}
    assert parents == {migrate.context.span_id, shadow.context.span_id}
    attributes = dict(db_spans[0].attributes or {})
    assert attributes["db.system.name"] == "sqlite"
    assert attributes["db.namespace"] == "iceberg.market"
    assert attributes["db.operation.name"] == "SELECT"
    assert attributes["db.query.text"] == "SELECT id, name FROM curves WHERE name <> ? ORDER BY id"
    assert attributes["db.response.returned_rows"] == 4
    assert (shadow.attributes or {})["aurum.migration.comparison"] == "match"


def test_writes_are_never_shadowed_so_rows_land_once(routed: Any, tmp_path: Path) -> None:
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=100))
        for i in range(10, 30):
            routed.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", 1.0))
        telemetry.wait_for_shadows()
        assert telemetry.spans("shadow database") == []
        served = {
            (span.attributes or {})["aurum.migration.implementation"]
            for span in telemetry.spans("migrate database")
        }
    assert served == {"legacy", "simplified"}
    rows = routed.legacy_client.query("SELECT id, count(*) FROM curves WHERE id >= 10 GROUP BY id")
    assert sorted(rows) == [(i, 1) for i in range(10, 30)]


def test_a_shadow_that_drops_a_row_is_reported(
    routed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    simple = routed.simplified_client
    real_query = simple.query

    def drop_last(self: SimpleTrinoClient, sql: str, params: Any = None) -> Rows:
        rows = real_query(sql, params)
        return Rows(rows[:-1], rows.columns, ordered=rows.ordered)

    simple.query = types.MethodType(drop_last, simple)  # a simplified path that loses a row
    caplog.set_level(logging.WARNING, logger="aurum_otel.mismatch")
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        routed.query("SELECT id, name FROM curves ORDER BY id")
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
    (record,) = [r for r in caplog.records if r.name == "aurum_otel.mismatch"]
    assert "row only in authoritative (x1): (3, 'c3')" in record.getMessage()


def test_no_password_in_spans_metrics_or_logs_when_trino_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = FakeDB()
    db.fail(*(trino.exceptions.TrinoConnectionError(
        f"failed to fetch: https://aurum:{CANARY}@trino.test/v1/statement"
    ) for _ in range(10)))
    settings = AurumSettings(trino=TrinoSettings(
        host="trino.test", port=8443, password=SecretStr(CANARY), http_scheme="https",
    ))
    caplog.set_level(logging.DEBUG)
    client = get_trino_client("iceberg", settings=settings, connect=db.connect,
                              options=LegacyOptions(retry=RetryPolicy(base_delay=0, max_delay=0)))
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        with pytest.raises(DatabaseUnavailableError) as caught:
            client.query("SELECT 1")
        telemetry.wait_for_shadows()
        spans = telemetry.spans()
        exported = [str(dict(s.attributes or {})) + str(s.events) + str(s.status.description)
                    for s in spans]
        points = [str(attrs) for attrs, _ in telemetry.points("aurum.migration.calls")]
    client.close()
    db_spans = [s for s in spans if (s.attributes or {}).get("db.system.name") == "trino"]
    assert db_spans and all(
        (s.attributes or {})["server.address"] == "trino.test" for s in db_spans
    )
    assert CANARY not in str(caught.value)
    assert all(CANARY not in text for text in exported + points)
    assert all(CANARY not in r.getMessage() for r in caplog.records)


def test_sqlite_connect_shares_one_memory_database() -> None:
    a = sqlite_connect(ConnectionConfig.sqlite())
    b = sqlite_connect(ConnectionConfig.sqlite())
    try:
        a.cursor().execute("CREATE TABLE IF NOT EXISTS shared_check (x INTEGER)")
        a.cursor().execute("INSERT INTO shared_check VALUES (7)")
        cursor = b.cursor()
        cursor.execute("SELECT x FROM shared_check")
        assert cursor.fetchall() == [(7,)]
    finally:
        a.cursor().execute("DROP TABLE shared_check")
        a.close()
        b.close()


def test_a_configured_ca_bundle_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # requests would otherwise let REQUESTS_CA_BUNDLE replace the session's CA (psf/requests#3829).
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    connection: Any = trino_connect(TRINO.copy(verify=str(bundle)))
    session = connection._http_session
    merged = session.merge_environment_settings("https://trino.test:8443/", {}, None, None, None)
    assert merged["verify"] == str(bundle)
    explicit = session.merge_environment_settings("https://trino.test:8443/", {}, None, False, None)
    assert explicit["verify"] is False
    connection.close()

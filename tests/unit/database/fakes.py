"""Fakes and helpers shared by the database tests: a scripted DB-API backend, a clock, driver errors."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trino.auth
import trino.exceptions
from pydantic import SecretStr

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.database import (
    ConnectionConfig,
    LegacyOptions,
    LegacyTrinoClient,
    RetryPolicy,
)

CANARY = "canary-Pa55word-db-91c2"


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


def set_phase(state_dir: Path, phase: Phase, rollout: Rollout | None = None) -> None:
    FileStore.in_dir(state_dir).transition("database", phase, rollout, actor="test", reason="test")

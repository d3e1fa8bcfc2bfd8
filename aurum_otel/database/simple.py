"""``SimpleTrinoClient``: the simplified Trino client. One lazy connection, one reconnect."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from opentelemetry.trace import TracerProvider

from aurum_otel.database.base import Params, Rows
from aurum_otel.database.config import ConnectionConfig
from aurum_otel.database.connect import Connect, DBAPIConnection, connect_for
from aurum_otel.database.errors import (
    DatabaseError,
    ErrorKind,
    classify,
    scrubbed_cause,
    translate,
)
from aurum_otel.database.spans import DB_RESPONSE_RETURNED_ROWS, DatabaseSpans
from aurum_otel.database.statement import execute_statement, fetch_rows
from aurum_otel.errors import AurumOtelError

T = TypeVar("T")


class SimpleTrinoClient:
    """A thin Trino client: one connection for its catalog, opened on first use.

    When the connection turns out to be dropped, it reconnects and tries once more (a write only
    when it provably never reached the server). No pool, no breaker, no cache: Trino's HTTP
    protocol makes a connection cheap, and the coordinator queues work itself.

    Args:
        config: where to connect.
        connect: opens a DB-API connection (default: Trino, or sqlite for a sqlite config).
        tracer_provider: for the statement spans; default: aurum-otel's, else the global one.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        connect: Connect | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.config = config
        self._connect = connect or connect_for(config)
        self._lock = threading.Lock()
        self._connection: DBAPIConnection | None = None
        self.spans = DatabaseSpans(config, tracer_provider=tracer_provider)
        self.reconnects = 0

    def query(self, sql: str, params: Params = None) -> Rows:
        """Run a read and return its rows.

        Raises:
            DatabaseError: the statement failed (DatabaseUnavailableError when the server could
                not be reached, even after reconnecting).
        """
        return self._run(sql, params, fetch_rows, write=False)

    def execute(self, sql: str, params: Params = None) -> int | None:
        """Run a write or DDL; return the affected row count when the database reports one."""
        return self._run(sql, params, execute_statement, write=True)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            _close_quietly(connection)

    def _run(self, sql: str, params: Params, run: Callable[..., T], *, write: bool) -> T:
        for attempt in (1, 2):
            connection: DBAPIConnection | None = None
            try:
                connection = self._open()
                with self.spans.statement(sql) as span:
                    result = run(connection, sql, params)
                    if isinstance(result, Rows) and span.is_recording():
                        span.set_attribute(DB_RESPONSE_RETURNED_ROWS, len(result))
                return result
            except Exception as exc:
                if isinstance(exc, AurumOtelError) and not isinstance(exc, DatabaseError):
                    raise
                kind = classify(exc)
                if kind is not ErrorKind.FATAL and connection is not None:
                    self._drop(connection)
                dropped = kind is ErrorKind.NOT_SENT or (kind is ErrorKind.TRANSIENT and not write)
                if attempt == 1 and dropped:
                    self.reconnects += 1
                    continue
                raise translate(exc, secrets=self.config.secrets) from scrubbed_cause(
                    exc, self.config.secrets)
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> DBAPIConnection:
        connection = self._connection
        if connection is None:
            with self._lock:
                if self._connection is None:
                    self._connection = self._connect(self.config)
                connection = self._connection
        return connection

    def _drop(self, connection: DBAPIConnection) -> None:
        with self._lock:
            if self._connection is not connection:
                return  # another thread already replaced it
            self._connection = None
        _close_quietly(connection)


def _close_quietly(connection: DBAPIConnection) -> None:
    with contextlib.suppress(Exception):
        connection.close()

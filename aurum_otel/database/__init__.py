"""The ``database`` migration: the legacy pooled Trino client vs the simple one.

``get_trino_client("iceberg")`` returns one object whose ``query`` and ``execute`` are routed by
the ``database`` migration's phase; in hybrid, reads are shadowed and compared row by row with
:func:`rows_comparator`, writes never are. Statements are traced as OpenTelemetry client spans
(``db.system.name``, ``db.namespace``, ``db.operation.name``, sanitized ``db.query.text``).
"""

from __future__ import annotations

from aurum_otel.database.base import Params, Rows, TrinoClientProtocol, rows_comparator
from aurum_otel.database.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from aurum_otel.database.config import ConnectionConfig
from aurum_otel.database.connect import (
    Connect,
    DBAPIConnection,
    DBAPICursor,
    sqlite_connect,
    trino_connect,
)
from aurum_otel.database.errors import (
    CircuitOpenError,
    DatabaseError,
    DatabaseUnavailableError,
    ErrorKind,
    PoolTimeoutError,
    QueryTimeoutError,
    classify,
)
from aurum_otel.database.legacy import LegacyOptions, LegacyTrinoClient
from aurum_otel.database.pool import PoolPolicy
from aurum_otel.database.retry import RetryPolicy
from aurum_otel.database.routed import MIGRATION, connection_config, get_trino_client
from aurum_otel.database.simple import SimpleTrinoClient

__all__ = [
    "MIGRATION",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Connect",
    "ConnectionConfig",
    "DBAPIConnection",
    "DBAPICursor",
    "DatabaseError",
    "DatabaseUnavailableError",
    "ErrorKind",
    "LegacyOptions",
    "LegacyTrinoClient",
    "Params",
    "PoolPolicy",
    "PoolTimeoutError",
    "QueryTimeoutError",
    "RetryPolicy",
    "Rows",
    "SimpleTrinoClient",
    "TrinoClientProtocol",
    "classify",
    "connection_config",
    "get_trino_client",
    "rows_comparator",
    "sqlite_connect",
    "trino_connect",
]

"""Run one statement on a DB-API connection: the part both clients do the same way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from aurum_otel.database.base import Params, Rows
from aurum_otel.database.connect import DBAPIConnection, DBAPICursor
from aurum_otel.database.sql import has_top_level_order_by

CursorWatch = Callable[[DBAPICursor], None]


def fetch_rows(
    connection: DBAPIConnection, sql: str, params: Params = None,
    *, watch: CursorWatch | None = None,
) -> Rows:
    """Run a read and return every row, with its columns and whether it is ordered.

    Args:
        connection: an open DB-API connection.
        sql: the statement, with ``?`` placeholders.
        params: the placeholders' values.
        watch: called with the cursor before it runs (the legacy client's timeout cancels it).
    """
    cursor = connection.cursor()
    try:
        if watch is not None:
            watch(cursor)
        _run(cursor, sql, params)
        data = cursor.fetchall()
        # Trino knows the columns only once results arrive, so read them after fetching.
        columns = tuple(str(column[0]) for column in cursor.description or ())
    finally:
        _close(cursor)
    return Rows(data, columns, ordered=has_top_level_order_by(sql))


def execute_statement(
    connection: DBAPIConnection, sql: str, params: Params = None,
    *, watch: CursorWatch | None = None,
) -> int | None:
    """Run a write or DDL to completion and return the affected row count, if reported."""
    cursor = connection.cursor()
    try:
        if watch is not None:
            watch(cursor)
        _run(cursor, sql, params)
        # Trino runs the statement while its results are fetched: drain them to finish the write.
        cursor.fetchall()
        count = cursor.rowcount
        connection.commit()
    finally:
        _close(cursor)
    return count if isinstance(count, int) and count >= 0 else None


def _run(cursor: DBAPICursor, sql: str, params: Params) -> None:
    if params:
        cursor.execute(sql, list(params))
    else:
        cursor.execute(sql)


def _close(cursor: DBAPICursor) -> None:
    # Closing a Trino cursor may call the server to cancel; a failure there must not mask the
    # statement's own outcome.
    with contextlib.suppress(Exception):
        cursor.close()

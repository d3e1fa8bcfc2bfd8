"""database.sql: statement sanitizing, operation names, ORDER BY detection."""

from __future__ import annotations

import pytest

from aurum_otel.database.sql import has_top_level_order_by, operation_name, sanitize
from tests.unit.database.fakes import (
    CANARY,
)


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

"""database.base: Rows and the rows comparator."""

from __future__ import annotations

import copy

import pytest

from aurum_otel.database import (
    Rows,
    rows_comparator,
)
from aurum_otel.redact import describe


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
    assert f"row only in authoritative (x1): {describe((2, 'b'))}" in result.differences


def test_a_dropped_column_is_detected() -> None:
    a = Rows([(1, "a")], ("id", "name"))
    b = Rows([(1,)], ("id",))
    result = rows_comparator(a, b)
    assert not result.equal
    assert result.differences[0] == "columns: (id, name) != (id)"

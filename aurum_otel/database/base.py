"""What both Trino clients share: their protocol, the ``Rows`` they return, and how rows compare."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from aurum_otel.compare import MAX_DIFFERENCES, ComparisonResult, deep_compare, unordered_rows
from aurum_otel.redact import ValueFree, name_or_describe

Params = Sequence[Any] | None
Row = tuple[Any, ...]


class Rows(list[Row]):
    """A query's rows (tuples), with the column names and whether their order is meaningful.

    Compares equal to a plain list of the same rows, so callers can keep treating results as
    lists; :func:`rows_comparator` is what also checks the columns and the ordering rule.

    Attributes:
        columns: the column names, in order.
        ordered: ``True`` when the SQL has a top-level ``ORDER BY``; otherwise the database may
            return the rows in any order, and two correct runs may differ in order.
    """

    columns: tuple[str, ...]
    ordered: bool

    def __init__(
        self, rows: Iterable[Sequence[Any]] = (), columns: Iterable[str] = (), *,
        ordered: bool = False,
    ) -> None:
        super().__init__(tuple(row) for row in rows)
        self.columns = tuple(columns)
        self.ordered = ordered

    def __reduce__(self) -> tuple[Any, ...]:
        # deepcopy (the shadow's copy of a result) and pickle keep columns and ordered.
        return (_rebuild, (list(self), self.columns, self.ordered))

    def __repr__(self) -> str:
        return f"Rows({list.__repr__(self)}, columns={self.columns!r}, ordered={self.ordered})"

    def copy(self) -> Rows:
        """A shallow copy that keeps the columns and the ordering flag."""
        return Rows(self, self.columns, ordered=self.ordered)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, row, strict=False)) for row in self]


def _rebuild(rows: list[Row], columns: tuple[str, ...], ordered: bool) -> Rows:
    return Rows(rows, columns, ordered=ordered)


def rows_comparator(authoritative: Any, shadow: Any) -> ComparisonResult:
    """Compare two query results: columns, then rows in order when ordered, else as multisets.

    Either side being ordered makes the comparison ordered: an ``ORDER BY`` on the authoritative
    query is a promise the shadow must keep. Like :func:`~aurum_otel.compare.deep_compare`, the
    differences hold no value: a row is described by its length and a keyed hash, and a column
    name that is not a plain identifier (an expression, a quoted literal) by its description.
    """
    if not isinstance(authoritative, Rows) or not isinstance(shadow, Rows):
        return deep_compare(authoritative, shadow)
    differences: list[str] = []
    if authoritative.columns != shadow.columns:
        differences.append(
            ValueFree(f"columns: {_columns(authoritative.columns)} != {_columns(shadow.columns)}")
        )
    as_multisets = unordered_rows(list(authoritative), list(shadow))
    differences.extend(as_multisets.differences)
    if as_multisets.equal and (authoritative.ordered or shadow.ordered):
        in_order = deep_compare(list(authoritative), list(shadow))
        if not in_order.equal:
            differences.append(
                ValueFree("rows: the same rows in a different order (the query has ORDER BY)"))
            # deep_compare calls the elements "[i]"; name them rows here.
            differences.extend(ValueFree(f"rows{line}") for line in in_order.differences[:5])
    return ComparisonResult(not differences, tuple(differences[:MAX_DIFFERENCES]))


def _columns(columns: tuple[str, ...]) -> str:
    return "(" + ", ".join(name_or_describe(column) for column in columns) + ")"


@runtime_checkable
class TrinoClientProtocol(Protocol):
    """What the legacy and the simple Trino client both offer (and ``get_trino_client`` routes)."""

    def query(self, sql: str, params: Params = None) -> Rows:
        """Run a read and return its rows."""
        ...

    def execute(self, sql: str, params: Params = None) -> int | None:
        """Run a write (or DDL); return the affected row count when the database reports one."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...

"""Properties of the comparators: no value reaches a report, and a value always matches its copy."""

from __future__ import annotations

import copy
import logging
import math
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aurum_otel.compare import ComparisonResult, as_result, deep_compare, unordered_rows
from aurum_otel.database import Rows, rows_comparator
from aurum_otel.hooks import MismatchReport
from aurum_otel.mismatch_log import MismatchLog
from aurum_otel.phase import Comparison, Implementation, Phase
from aurum_otel.redact import fingerprint

# Punctuation keeps it from looking like a field name: a dict key that does is shown in paths
# (documented in aurum_otel.redact); every other place a canary can sit is covered below.
CANARY = "Zq8x-CANARY!p2"

canary_text = st.builds(lambda a, b: a + CANARY + b, st.text(max_size=5), st.text(max_size=5))
atoms = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
         | st.text(max_size=8) | st.binary(max_size=8) | canary_text
         | canary_text.map(str.encode))
keys = st.text(max_size=8) | st.sampled_from(["id", "host", "password", "dsn", "rows"]) | canary_text


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (st.lists(children, max_size=4)
                          | st.lists(children, max_size=4).map(tuple)
                          | st.dictionaries(keys, children, max_size=4)),
        max_leaves=16,
    )


values = nested(atoms)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def everything_said(result: ComparisonResult) -> str:
    """The differences attribute, str() and repr() of the result, the log line and the report."""
    report = MismatchReport(name="m", phase=Phase.HYBRID, authoritative=Implementation.LEGACY,
                            shadow=Implementation.SIMPLIFIED, result=Comparison.MISMATCH,
                            differences=result.differences)
    logger = logging.getLogger("test.properties")
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        MismatchLog(logger, burst=2).report(report)
        MismatchLog(logger).warn("m", result)
    finally:
        logger.removeHandler(handler)
    attribute = "; ".join(result.differences)[:2000]  # what the span attribute carries
    return "\n".join([attribute, str(result), repr(result), report.summary(), repr(report),
                      *handler.lines])


@settings(max_examples=400, deadline=None)
@given(authoritative=values, shadow=values)
def test_no_value_reaches_a_report(authoritative: Any, shadow: Any) -> None:
    for result in (deep_compare(authoritative, shadow), unordered_rows([authoritative], [shadow]),
                   as_result(deep_compare(authoritative, shadow))):
        assert CANARY not in everything_said(result)


@settings(max_examples=200, deadline=None)
@given(base=values, changed=values)
def test_no_value_reaches_a_report_of_a_small_change(base: Any, changed: Any) -> None:
    # A shadow that differs in one place only, deep inside: the most revealing report there is.
    authoritative = {"result": base, "extra": [CANARY]}
    shadow = {"result": changed, "extra": [CANARY + "x"]}
    assert CANARY not in everything_said(deep_compare(authoritative, shadow))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(), atoms), max_size=5),
       other=st.lists(st.tuples(st.integers(), atoms), max_size=5), ordered=st.booleans())
def test_no_row_value_reaches_a_rows_report(
    rows: list[tuple[Any, ...]], other: list[tuple[Any, ...]], ordered: bool
) -> None:
    result = rows_comparator(Rows(rows, ("id", "v"), ordered=ordered),
                             Rows(other, ("id", CANARY), ordered=ordered))
    assert CANARY not in everything_said(result)


@settings(max_examples=400, deadline=None)
@given(value=values | st.frozensets(st.integers() | st.text(max_size=4), max_size=4))
def test_a_value_always_matches_its_deep_copy(value: Any) -> None:
    # NaN included: both implementations returned NaN, which is the same result.
    result = deep_compare(value, copy.deepcopy(value))
    assert result.equal and result.comparable and result.differences == ()


@settings(max_examples=200, deadline=None)
@given(authoritative=values, shadow=values)
def test_equal_says_no_differences_and_a_difference_says_not_equal(
    authoritative: Any, shadow: Any
) -> None:
    result = deep_compare(authoritative, shadow)
    assert result.comparable  # plain data is always comparable
    assert result.equal == (not result.differences)
    assert deep_compare(shadow, authoritative).equal == result.equal  # symmetric verdict


def strictly_equal(a: Any, b: Any) -> bool:
    """The reference: same content, the same leaf types (int and float interchangeable), NaN == NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    numeric = (int, float)
    if (isinstance(a, numeric) and not isinstance(a, bool)
            and isinstance(b, numeric) and not isinstance(b, bool)):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def twisted(value: Any, data: st.DataObject) -> Any:
    """``value`` with some leaves swapped for ones ``==`` calls equal but of another type."""
    if isinstance(value, dict):
        return {k: twisted(v, data) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(twisted(v, data) for v in value)
    if isinstance(value, bool):
        return data.draw(st.sampled_from([value, int(value), float(value)]))
    if isinstance(value, int):
        return data.draw(st.sampled_from([value, float(value), Decimal(value)]
                                         + ([bool(value)] if value in (0, 1) else [])))
    return value


@settings(max_examples=200, deadline=None)
@given(value=values, data=st.data())
def test_equal_exactly_when_the_reference_says_so(value: Any, data: st.DataObject) -> None:
    # Leaves == calls equal but of other types (0 and False, 10 and Decimal(10)) are differences;
    # int and float are not. The fast path and the walk must both agree with the reference.
    other = twisted(value, data)
    assert deep_compare(value, other).equal == strictly_equal(value, other)
    assert deep_compare(other, value).equal == strictly_equal(other, value)


@settings(max_examples=200, deadline=None)
@given(a=values | st.frozensets(st.integers() | st.text(max_size=4), max_size=4),
       b=values | st.frozensets(st.integers() | st.text(max_size=4), max_size=4))
def test_a_fingerprint_tells_equal_values_from_different_ones(a: Any, b: Any) -> None:
    assert fingerprint(a) is not None and fingerprint(a) == fingerprint(copy.deepcopy(a))
    if fingerprint(a) == fingerprint(b):  # 32 bits: a collision in 200 draws is ~1e-7
        assert strictly_equal(a, b) or (isinstance(a, frozenset) and a == b)
    else:  # the fingerprint hashes types too: only values equal type for type must collide
        assert not exactly_equal(a, b)


def exactly_equal(a: Any, b: Any) -> bool:
    """Equal with the very same types at every level (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exactly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b, strict=True))
    return strictly_equal(a, b)

"""compare and redact: what a mismatch report says (where and how two results differ, never a value)."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from aurum_otel.compare import (
    EQUAL,
    MAX_DIFFERENCES,
    ComparisonResult,
    ValueFree,
    as_result,
    deep_compare,
    unordered_rows,
)
from aurum_otel.database import Rows, rows_comparator
from aurum_otel.redact import REDACTED, describe, fingerprint, is_secret_key

CANARY = "canary-Zq8xK2p-secret"
HASH = re.compile(r"#[0-9a-f]{8}")


def text_of(result: ComparisonResult) -> str:
    return "\n".join(result.differences) + "\n" + str(result) + "\n" + repr(result)


# --- 12.12: no value in a difference ------------------------------------------------------------


@pytest.mark.parametrize(
    ("authoritative", "shadow"),
    [
        ({"host": CANARY}, {"host": CANARY + "x"}),
        ((1, CANARY), (1, CANARY + "x")),                    # tuple positions
        (CANARY, CANARY + "x"),                              # plain strings
        ([CANARY.encode()], [b"other"]),                     # bytes
        ({"n": 123456789}, {"n": 987654321}),                # numbers are values too
        ({"k": [CANARY, 1]}, {"k": [CANARY]}),               # a dropped element is not shown
        ({"a": 1}, {"a": 1, "b": CANARY}),                   # a key only on one side
        ({"dsn": f"postgresql://u:{CANARY}@h/db"}, {"dsn": "postgresql://u:x@h/db"}),
        ({"pwd": CANARY}, {"pwd": "x"}),
        ({"private_key": CANARY}, {"private_key": "x"}),
        ({1: CANARY}, {1: "x"}),
        ({CANARY: 1}, {CANARY: 2}),                          # a key that is not a field name
        ({CANARY: 1}, {"other": 1}),
        ({CANARY}, {"x"}),                                   # sets
        (Decimal("12.5"), Decimal("99.1")),
    ],
    ids=["str-field", "tuple-position", "plain-string", "bytes", "int", "dropped-element",
         "key-one-side", "dsn", "pwd", "private_key", "int-key", "value-like-key",
         "value-like-key-one-side", "set", "decimal"],
)
def test_differences_carry_no_value(authoritative: Any, shadow: Any) -> None:
    result = deep_compare(authoritative, shadow)
    assert not result.equal and result.differences
    text = text_of(result)
    assert CANARY not in text and "12.5" not in text and "123456789" not in text
    assert "x'" not in text and "b'other'" not in text


def test_a_difference_says_where_and_how() -> None:
    result = deep_compare(
        {"host": "old-trino", "port": 8080, "tags": [1, 2], "debug": False},
        {"host": "new-trino", "port": "8080", "tags": [1], "debug": True},
    )
    assert result.differences == (
        f"debug: {describe(False)} != {describe(True)}",
        f"host: {describe('old-trino')} != {describe('new-trino')}",
        "port: int != str",
        "tags: length 2 != 1",
    )
    assert describe("old-trino").startswith("str(len 9)#")


def test_describe_and_fingerprint_are_keyed_hashes_equal_for_equal_values() -> None:
    assert fingerprint("abc") == fingerprint("abc") != fingerprint("abd")
    assert fingerprint(1) != fingerprint("1")  # the type is part of what is hashed
    assert fingerprint((1, "a")) == fingerprint((1, "a"))
    assert HASH.fullmatch(fingerprint("abc") or "")
    assert describe(None) == "None"
    assert describe([1, 2]) == f"list(len 2){fingerprint([1, 2])}"
    assert describe(object()) == "object"  # no canonical form: the type alone


@pytest.mark.parametrize(
    "key",
    ["password", "db_passwd", "PWD", "passphrase", "client_secret", "refresh_token", "api_key",
     "apikey", "API-KEY", "private_key", "privateKey", "access_key", "dsn", "DATABASE_DSN",
     "credential", "credentials", "auth", "Authorization", "cookie", "set_cookie"],
)
def test_every_secret_key_pattern_hides_even_lengths_and_hashes(key: str) -> None:
    assert is_secret_key(key)
    result = deep_compare({key: "aaaa", "other": "bbbb"}, {key: "aaaaa", "other": "ccccc"})
    path = key if key.isidentifier() else f"[{describe(key)}]"  # API-KEY is not a field name
    assert f"{path}: {REDACTED} != {REDACTED}" in result.differences
    assert f"other: {describe('bbbb')} != {describe('ccccc')}" in result.differences


@pytest.mark.parametrize("key", ["host", "port", "name", "rows", "catalog", "user", "path"])
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_a_secret_subtree_is_opaque() -> None:
    result = deep_compare({"credentials": {"user": "a", "key": [1, 2]}},
                          {"credentials": {"user": "b", "key": [1]}})
    assert result.differences == (f"credentials: {REDACTED} != {REDACTED}",)


def test_secret_values_are_redacted_anywhere() -> None:
    result = deep_compare([SecretStr(CANARY)], [SecretStr("other")])
    assert result.differences == (f"[0]: {REDACTED} != {REDACTED}",)
    assert deep_compare([SecretStr(CANARY)], [SecretStr(CANARY)]).equal


def test_models_and_dataclasses_are_compared_field_by_field_at_any_depth() -> None:
    @dataclass
    class Point:
        x: int
        label: str

    class Model(BaseModel):
        token: SecretStr
        point: list[int]

    result = deep_compare({"p": Point(1, CANARY)}, {"p": Point(1, "other")})
    assert result.differences == (f"p.label: {describe(CANARY)} != {describe('other')}",)
    model = deep_compare(Model(token=SecretStr(CANARY), point=[1]),
                         Model(token=SecretStr("t"), point=[2]))
    assert model.differences == (f"point[0]: {describe(1)} != {describe(2)}",
                                 f"token: {REDACTED} != {REDACTED}")


def test_keys_that_are_not_field_names_are_hashed_in_paths() -> None:
    result = deep_compare({"a b": 1, 7: 1, "ok_name": 1}, {"a b": 2, 7: 2, "ok_name": 2})
    assert f"ok_name: {describe(1)} != {describe(2)}" in result.differences
    assert f"[{describe('a b')}]: {describe(1)} != {describe(2)}" in result.differences
    assert f"[{describe(7)}]: {describe(1)} != {describe(2)}" in result.differences


def test_differences_are_capped() -> None:
    result = deep_compare(list(range(100)), [-1] * 100)
    assert len(result.differences) == MAX_DIFFERENCES


# --- custom comparators: their text is sanitized unless vouched for ---------------------------


def test_a_custom_comparators_text_keeps_only_its_path() -> None:
    result = as_result(ComparisonResult(False, (f"host: {CANARY} != b", "total differs: 5 != 6",
                                                f"password: {CANARY}")))
    assert not result.equal
    assert CANARY not in text_of(result)
    host, total, password = result.differences
    assert host.startswith("host: custom difference (len ") and HASH.search(host)
    assert total.startswith(f"custom difference (len {len('total differs: 5 != 6')})#")
    assert password == f"password: {REDACTED}"


def test_text_vouched_value_free_is_kept() -> None:
    result = as_result(ComparisonResult(False, (ValueFree("row count: 3 != 4"),)))
    assert result.differences == ("row count: 3 != 4",)
    library = as_result(deep_compare({"a": 1}, {"a": "1"}))
    assert library.differences == ("a: int != str",)


def test_a_bool_comparator_and_odd_entries() -> None:
    assert as_result(True) == ComparisonResult(True)
    assert as_result(False).differences == ("values differ",)
    odd = as_result(ComparisonResult(False, (CANARY.encode(), 42) * 30))  # type: ignore[arg-type]
    assert len(odd.differences) == MAX_DIFFERENCES and CANARY not in text_of(odd)


# --- the database migration's rows comparator --------------------------------------------------


@pytest.mark.parametrize("ordered", [False, True], ids=["unordered", "ordered"])
def test_rows_differences_carry_no_row_values(ordered: bool) -> None:
    a = Rows([(1, CANARY), (2, "b")], ("id", "name"), ordered=ordered)
    b = Rows([(2, "b"), (1, "x")], ("id", "name"), ordered=ordered)
    result = rows_comparator(a, b)
    assert not result.equal and CANARY not in text_of(result)
    assert f"row only in authoritative (x1): {describe((1, CANARY))}" in result.differences
    assert f"row only in shadow (x1): {describe((1, 'x'))}" in result.differences


def test_columns_that_are_not_names_are_hashed() -> None:
    a = Rows([(1,)], ("id",))
    b = Rows([(1,)], (f"'{CANARY}'",))
    result = rows_comparator(a, b)
    assert result.differences == (f"columns: (id) != ({describe(chr(39) + CANARY + chr(39))})",)


def test_unordered_rows_report_counts_and_hashes() -> None:
    result = unordered_rows([(1, CANARY)] * 2, [(1, CANARY)])
    assert result.differences == ("rows: 2 != 1",
                                  f"row only in authoritative (x1): {describe((1, CANARY))}")


# --- 12.11: equal results of other kinds, and results that cannot be compared ------------------


def _gen(values: list[int]) -> Iterator[int]:
    yield from values


@pytest.mark.parametrize(
    ("authoritative", "shadow"),
    [(range(3), range(0, 3)), ({"a": 1}.keys(), {"a": 2}.keys()),
     ({"a": [1]}.items(), {"a": [1]}.items()),
     ({"a": 1, "b": [2]}.values(), {"x": 1, "y": [2]}.values()),
     ({1, 2}, {2, 1}), (frozenset({"a"}), frozenset({"a"})), ({1}, frozenset({1})),
     ({"s": {1.0, 2}}, {"s": {1.0, 2}}),
     (float("nan"), float("nan")), ([float("nan")], [float("nan")]),
     ({"x": float("nan")}, {"x": float("nan")})],
    ids=["range", "dict_keys", "dict_items", "dict_values", "set", "frozenset", "set-frozenset",
         "nested-set", "nan", "nan-in-list", "nan-in-dict"],
)
def test_equal_results_of_other_kinds_match(authoritative: Any, shadow: Any) -> None:
    result = deep_compare(authoritative, shadow)
    assert result.equal and result.comparable and result.differences == ()


@pytest.mark.parametrize(
    ("authoritative", "shadow", "line"),
    [(range(3), range(4), f"value: {describe(range(3))} != {describe(range(4))}"),
     ({"a": 1}.values(), {"a": 2}.values(), f"[0]: {describe(1)} != {describe(2)}"),
     ({"a": 1}.items(), {"a": 2}.items(), f"a: {describe(1)} != {describe(2)}"),
     ({1, 2}, {1}, "value: 1 only in authoritative"),
     ({True}, {1}, "value: an element bool != int"),
     ({1}, [1], "value: set != list")],
    ids=["range", "dict_values", "dict_items", "set", "set-element-type", "set-vs-list"],
)
def test_unequal_results_of_other_kinds_mismatch(authoritative: Any, shadow: Any, line: str) -> None:
    result = deep_compare(authoritative, shadow)
    assert not result.equal and result.comparable
    assert line in result.differences[0], result.differences


class Opaque:
    """Equality by identity only: two instances cannot be compared honestly."""

    def __init__(self, value: str) -> None:
        self.value = value


class Array:
    """An == that cannot be turned into a bool (like numpy arrays)."""

    def __eq__(self, other: object) -> Any:
        raise ValueError("truth value of an array is ambiguous")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("authoritative", "shadow", "reason"),
    [(_gen([1, 2]), _gen([1, 2]), "value: generator objects cannot be compared"),
     (iter([1]), iter([1]), "value: list_iterator objects cannot be compared"),
     ({"it": Opaque(CANARY)}, {"it": Opaque(CANARY)},
      "it: Opaque objects cannot be compared (== is identity)"),
     ([Array()], [Array()], "[0]: Array objects cannot be compared (== raised ValueError)")],
    ids=["generators", "iterators", "identity-eq", "raising-eq"],
)
def test_results_that_cannot_be_compared_are_incomparable_not_mismatched(
    authoritative: Any, shadow: Any, reason: str
) -> None:
    result = deep_compare(authoritative, shadow)
    assert not result.comparable and not result.equal
    assert result.reason == reason and result.differences == (f"not comparable: {reason}",)
    assert CANARY not in text_of(result)


def test_a_real_difference_beside_an_incomparable_part_is_a_mismatch() -> None:
    result = deep_compare({"it": Opaque("a"), "n": 1}, {"it": Opaque("a"), "n": 2})
    assert result.comparable and not result.equal
    assert result.differences == (f"n: {describe(1)} != {describe(2)}",)


def test_the_same_object_is_equal_even_when_it_cannot_be_compared() -> None:
    shared = Opaque("a")
    generator = _gen([1])
    assert deep_compare({"o": shared}, {"o": shared}).equal
    assert deep_compare(generator, generator).equal


def test_comparison_result_stays_backward_compatible() -> None:
    assert ComparisonResult(True) == ComparisonResult(True, (), comparable=True, reason="")
    legacy_positional = ComparisonResult(False, ("a: differs",))
    assert legacy_positional.comparable and legacy_positional.reason == ""
    incomparable = deep_compare(_gen([1]), _gen([1]))
    assert as_result(incomparable) == incomparable  # the library's own text is kept
    made = as_result(ComparisonResult.incomparable(f"socket {CANARY} is closed"))
    assert not made.equal and not made.comparable
    assert CANARY not in text_of(made) and made.reason.startswith("custom difference (len ")


# --- exact lines (each pins a behaviour a mutant changed without a test noticing) --------------


class AsyncTicker:
    """An async iterator that is not a generator: still not comparable."""

    def __aiter__(self) -> AsyncTicker:
        return self

    async def __anext__(self) -> int:
        raise StopAsyncIteration


class Clash:
    """Hashable, with an == that raises: a set of these cannot be compared."""

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        raise ValueError("no")


@pytest.mark.parametrize(
    ("authoritative", "shadow", "differences"),
    [({"a": 1}, {"a": 1, "b": 2}, ("b: only in shadow",)),
     ({"a": 1, "b": 2}, {"a": 1}, ("b: only in authoritative",)),
     ({"password": "x", "a": 1}, {"password": "x", "a": 2}, (f"a: {describe(1)} != {describe(2)}",)),
     ([SecretStr("x")], ["x"], (f"[0]: {REDACTED} != {REDACTED}",)),
     ({1}, {1, 2}, ("value: 1 only in shadow",)),
     ({1, 3}, {1, 2}, ("value: 1 only in authoritative, 1 only in shadow",)),
     (1, 2.5, (f"value: {describe(1)} != {describe(2.5)}",)),
     (_gen([1]), [1], ("value: generator != list",)),
     ({"enabled": 0}, {"enabled": False}, ("enabled: int != bool",)),
     ([10], [Decimal(10)], ("[0]: int != Decimal",)),
     ({"a": {"b": (0,)}}, {"a": {"b": (False,)}}, ("a.b[0]: int != bool",)),
     (0, False, ("value: int != bool",)),
     (Decimal(5), 5, ("value: Decimal != int",)),
     ([{"a": 0}], [{"a": False}], ("[0].a: int != bool",)),
     (["x"], [SecretStr("x")], (f"[0]: {REDACTED} != {REDACTED}",))],
    ids=["only-in-shadow", "only-in-authoritative", "equal-secret-is-silent", "secret-vs-plain",
         "set-shadow", "set-both", "int-float", "iterator-vs-list", "zero-false", "decimal",
         "deep-type", "top-zero-false", "top-decimal", "dict-in-list", "plain-vs-secret"],
)
def test_exact_differences(authoritative: Any, shadow: Any, differences: tuple[str, ...]) -> None:
    result = deep_compare(authoritative, shadow)
    assert result.equal is False and result.comparable is True
    assert result.differences == differences


@pytest.mark.parametrize(
    ("authoritative", "shadow"),
    [({"a": 1}, {"a": 1.0}), ({1, 2}, {1.0, 2}), ([0.0], [-0.0])],
    ids=["int-float", "set-int-float", "signed-zero"],
)
def test_int_and_float_of_equal_value_match(authoritative: Any, shadow: Any) -> None:
    assert deep_compare(authoritative, shadow).equal is True


@pytest.mark.parametrize(
    ("authoritative", "shadow", "reason"),
    [(_gen([1]), iter([1]), "value: generator and list_iterator objects cannot be compared"),
     (AsyncTicker(), AsyncTicker(), "value: AsyncTicker objects cannot be compared"),
     ({"token": _gen([1])}, {"token": _gen([1])}, f"token: {REDACTED} cannot be compared"),
     ({Clash()}, {Clash()}, "value: sets cannot be compared (ValueError)")],
    ids=["two-kinds-of-iterator", "async-iterator", "secret", "set"],
)
def test_exact_incomparable_reasons(authoritative: Any, shadow: Any, reason: str) -> None:
    result = deep_compare(authoritative, shadow)
    assert result.comparable is False and result.equal is False and result.reason == reason


def test_unordered_rows_exact() -> None:
    same_count = unordered_rows([(1, "a")], [(1, "b")])
    assert same_count.equal is False and not any(d.startswith("rows:") for d in same_count.differences)
    assert unordered_rows([{"a": 1}], [{"a": 2}]).equal is False
    assert unordered_rows([{"a": 1}, (2,)], [(2,), {"a": 1}]).equal is True
    assert unordered_rows([(1, {2})], [(1, {2})]).equal is True  # unhashable cells
    assert unordered_rows([(1, {2})], [(1, {3})]).equal is False
    assert unordered_rows({"a": 1}, [("a", 1)]).differences == ("value: dict != list",)
    assert unordered_rows([{"a": 1, 2: "b"}], [{2: "b", "a": 1}]).equal is True  # mixed key types


def test_an_equal_comparison_is_the_one_shared_result() -> None:
    """A match allocates no result on the call path: the default comparator, ``as_result`` and a
    ``True`` from a custom comparator all give the one immutable ``EQUAL``."""
    settings = {"user": 7, "features": ["a", "b"], "limit": 1.5, "nested": ({"x": None},)}
    assert deep_compare(settings, copy.deepcopy(settings)) is EQUAL
    assert unordered_rows([(1, "a"), (2, "b")], [(2, "b"), (1, "a")]) is EQUAL
    assert as_result(EQUAL) is EQUAL and as_result(True) is EQUAL
    assert ComparisonResult(True) == EQUAL
    with pytest.raises(dataclasses.FrozenInstanceError):
        EQUAL.equal = False  # type: ignore[misc]

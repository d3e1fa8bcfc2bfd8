"""Signatures: the same bug gives the same signature (any values, any process); another bug another."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aurum_otel.compare import deep_compare, unordered_rows
from aurum_otel.forensics.signature import normalize_path, order_paths, shape, signature_of


def signature(authoritative: Any, shadow: Any, **errors: str) -> str:
    lines = deep_compare(authoritative, shadow).differences
    return signature_of(shape(lines, order=order_paths(authoritative, shadow), **errors))


@given(st.integers(), st.integers(), st.text(), st.text())
def test_the_same_bug_on_any_values_has_one_signature(a: int, b: int, host_a: str, host_b: str
                                                      ) -> None:
    assume(host_a != host_b)
    first = signature({"port": a, "host": "h"}, {"port": str(a), "host": "h"})
    again = signature({"port": b, "host": host_a}, {"port": str(b), "host": host_a})
    assert first == again
    assert signature({"host": host_a}, {"host": host_b}) == signature({"host": "a"}, {"host": "b"})


@given(st.lists(st.integers(), min_size=2, max_size=20).filter(lambda xs: len(set(xs)) > 1),
       st.data())
def test_a_wrong_element_anywhere_in_a_list_is_one_signature(items: list[int], data: Any) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    changed: list[object] = list(items)
    changed[index] = "x"
    assert signature({"tags": items}, {"tags": changed}) == signature({"tags": [1]}, {"tags": ["x"]})


BUGS = {
    "type": ({"port": 1}, {"port": "1"}),
    "value": ({"port": 1}, {"port": 2}),
    "missing": ({"port": 1, "host": "h"}, {"host": "h"}),
    "extra": ({"host": "h"}, {"port": 1, "host": "h"}),
    "length": ({"tags": [1, 2]}, {"tags": [1]}),
    "order": ({"tags": [1, 2, 3]}, {"tags": [3, 2, 1]}),
    "members": ({"tags": {1, 2}}, {"tags": {1, 3}}),
    "other path": ({"host": 1}, {"host": "1"}),
    "secret": ({"password": "a"}, {"password": "b"}),
    "two fields": ({"port": 1, "host": 1}, {"port": "1", "host": "1"}),
}


def test_different_bugs_have_different_signatures() -> None:
    signatures = {name: signature(*pair) for name, pair in BUGS.items()}
    for (one, first), (other, second) in itertools.combinations(signatures.items(), 2):
        assert first != second, f"{one} and {other} share a signature"


@pytest.mark.parametrize(("bug", "expected"), [
    ("type", ("port: type int!=str",)), ("value", ("port: value",)),
    ("missing", ("port: missing",)), ("extra", ("port: extra",)),
    ("length", ("tags: length",)), ("order", ("tags: order",)),
    ("members", ("tags: members",)), ("secret", ("password: value",)),
], ids=str)
def test_the_shape_names_the_path_and_how_it_differs(bug: str, expected: tuple[str, ...]) -> None:
    authoritative, shadow = BUGS[bug]
    lines = deep_compare(authoritative, shadow).differences
    assert shape(lines, order=order_paths(authoritative, shadow)) == expected


def test_errors_are_part_of_the_signature() -> None:
    key = shape((), authoritative_error=None, shadow_error="KeyError")
    value = shape((), authoritative_error=None, shadow_error="ValueError")
    assert key == ("raised: - -> KeyError",)
    assert signature_of(key) != signature_of(value)


def test_rows_and_described_keys_are_normalised() -> None:
    rows = unordered_rows([(1, "a"), (2, "b")], [(1, "a"), (3, "c")]).differences
    assert shape(rows) == ("rows[*]: extra", "rows[*]: missing")
    assert normalize_path("a[3].b[str(len 5)#1a2b3c4d][0]") == "a[*].b[str][*]"


def test_a_signature_is_the_same_in_another_process() -> None:
    # The value hashes in the lines are keyed per process; the signature must not be.
    code = ("from aurum_otel.compare import deep_compare\n"
            "from aurum_otel.forensics.signature import shape, signature_of\n"
            "print(signature_of(shape(deep_compare({'host': 'a', 'n': [1]}, "
            "{'host': 'b', 'n': ['1']}).differences)))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()
    assert there == signature({"host": "a", "n": [1]}, {"host": "b", "n": ["1"]})
    assert len(there) == 12 and int(there, 16) >= 0

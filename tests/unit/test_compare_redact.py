"""redact: value-free descriptions, keyed fingerprints and the sanitizing of foreign text."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretBytes, SecretStr

from aurum_otel.compare import ComparisonResult, ValueFree, as_result
from aurum_otel.mismatch_log import MismatchLog
from aurum_otel.redact import REDACTED, describe, fingerprint, is_secret_value, sanitize


def test_describe_names_type_length_and_hash_exactly() -> None:
    assert describe(5) == f"int{fingerprint(5)}"
    assert describe("abc") == f"str(len 3){fingerprint('abc')}"
    assert describe({"a": 1}.keys()) == "dict_keys(len 1)"  # a view has no canonical form
    assert describe(SecretStr("x")) == REDACTED and describe(SecretBytes(b"x")) == REDACTED
    assert is_secret_value(SecretBytes(b"x")) and not is_secret_value(b"x")


def test_fingerprints_cover_every_canonical_kind() -> None:
    for value in ("\ud800 lone surrogate", 2**20000, float("nan"), b"\x00", range(3), (1, [2]),
                  {"a": {1, 2}}, frozenset({"x"})):
        assert fingerprint(value) is not None, value
    assert fingerprint(0.0) == fingerprint(-0.0)  # equal values, equal hashes
    assert fingerprint(True) != fingerprint(False) != fingerprint(None)
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2}) != fingerprint({"b": 1})
    assert fingerprint([1, 2]) != fingerprint([2, 1]) and fingerprint({1, 2}) == fingerprint({2, 1})


class BrokenLen(list[int]):
    def __len__(self) -> int:
        raise RuntimeError("no length")


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_value_too_deep_or_without_a_canonical_form_has_no_fingerprint() -> None:
    assert describe(BrokenLen()) == "BrokenLen" and fingerprint(BrokenLen()) is None
    deep: list[object] = []
    for _ in range(60):
        deep = [deep]
    assert fingerprint(deep) is None and describe(deep) == "list(len 1)"
    assert fingerprint([object()]) is None and fingerprint({"a": object()}) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [("host: hunter2 != x", "host: custom difference (len 12){h}"),
     ("a.b[0].c: v", "a.b[0].c: custom difference (len 1){h}"),
     ("db.password: hunter2", f"db.password: {REDACTED}"),
     ("rows[2].api_key: k", f"rows[2].api_key: {REDACTED}"),
     ("no path here: v", "custom difference (len 15){h}")],
)
def test_sanitize_keeps_a_path_and_describes_the_rest(line: str, expected: str) -> None:
    rest = line.split(": ", 1)[1] if expected.count(":") else line
    assert sanitize(line) == expected.format(h=fingerprint(rest))


def test_sanitize_of_other_objects_and_of_vouched_text() -> None:
    assert sanitize(42) == f"custom difference (len 2){fingerprint('42')}"
    assert sanitize(b"pw") == f"custom difference (len 5){fingerprint(str(b'pw'))}"
    assert sanitize(BadStr()) == f"custom difference (len 6){fingerprint('BadStr')}"
    vouched = ValueFree("rows: 3 != 4")
    assert sanitize(vouched) is vouched


def test_as_result_keeps_verdicts_and_an_empty_reason() -> None:
    user = as_result(ComparisonResult(False, ("x: 1",)))
    assert user.equal is False and user.comparable is True and user.reason == ""
    noted = as_result(ComparisonResult(True, ("x: within tolerance",)))
    assert noted.equal is True and noted.differences == (sanitize("x: within tolerance"),)
    assert as_result(ComparisonResult(True)).equal is True
    assert as_result(False).equal is False
    made = ComparisonResult.incomparable("it")
    assert made.equal is False and made.comparable is False
    assert made.differences == ("not comparable: it",)
    cleaned = as_result(made)
    assert cleaned.equal is False and cleaned.comparable is False and cleaned.reason == sanitize("it")


def test_mismatch_log_defaults(caplog: pytest.LogCaptureFixture) -> None:
    log = MismatchLog(interval=0.5)  # a sub-second interval is fine
    assert log.logger.name == "aurum_otel.mismatch" and log.burst == 5
    caplog.set_level(logging.WARNING, logger="aurum_otel.mismatch")
    assert log.emit("m", "100% different")
    assert caplog.messages == ["100% different"]

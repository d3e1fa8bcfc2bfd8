"""Comparators: how a shadow's result is judged against the authoritative one.

A comparator is any callable ``(authoritative, shadow) -> bool | ComparisonResult``. The default,
:func:`deep_compare`, walks dicts, sequences, dataclasses and pydantic models and reports
field-level differences with secrets redacted, so a mismatch report can be logged and exported.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "<redacted>"
MAX_DIFFERENCES = 20
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|credential|auth", re.I)


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """The verdict of one comparison, with human-readable, secret-free differences."""

    equal: bool
    differences: tuple[str, ...] = ()


Comparator = Callable[[Any, Any], "bool | ComparisonResult"]


def is_secret_key(key: object) -> bool:
    """Whether a field name looks like it holds a secret (password, token, api key, ...)."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact(value: object) -> str:
    """A short, secret-free rendering of a value for a difference line."""
    if _is_secret_value(value):
        return REDACTED
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def deep_compare(authoritative: object, shadow: object) -> ComparisonResult:
    """Deep equality with field-level differences (the default comparator)."""
    try:
        # The usual case, equal results of plain types, settled without building any text.
        if authoritative == shadow and _identical(authoritative, shadow):
            return ComparisonResult(True)
    except Exception:
        pass  # an == that raises: the walk below judges field by field
    differences: list[str] = []
    _walk(_plain(authoritative), _plain(shadow), "", differences, secret=False)
    return ComparisonResult(not differences, tuple(differences[:MAX_DIFFERENCES]))


def unordered_rows(authoritative: object, shadow: object) -> ComparisonResult:
    """Compare two row lists as multisets: the comparator for queries without ORDER BY."""
    if not isinstance(authoritative, list | tuple) or not isinstance(shadow, list | tuple):
        return deep_compare(authoritative, shadow)
    left = Counter(_hashable(row) for row in authoritative)
    right = Counter(_hashable(row) for row in shadow)
    if left == right:
        return ComparisonResult(True)
    differences = [f"rows: {len(authoritative)} != {len(shadow)}"] if len(
        authoritative
    ) != len(shadow) else []
    for row, count in (left - right).items():
        differences.append(f"row only in authoritative (x{count}): {redact(row)}")
    for row, count in (right - left).items():
        differences.append(f"row only in shadow (x{count}): {redact(row)}")
    return ComparisonResult(False, tuple(differences[:MAX_DIFFERENCES]))


def as_result(outcome: bool | ComparisonResult) -> ComparisonResult:
    if isinstance(outcome, ComparisonResult):
        return outcome
    return ComparisonResult(bool(outcome), () if outcome else ("values differ",))


def _walk(left: Any, right: Any, path: str, out: list[str], *, secret: bool) -> None:
    if len(out) >= MAX_DIFFERENCES:
        return
    label = path or "value"
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key in sorted(set(left) | set(right), key=str):
            sub = f"{path}.{key}" if path else str(key)
            hidden = secret or is_secret_key(key)
            if key not in right:
                out.append(f"{sub}: only in authoritative")
            elif key not in left:
                out.append(f"{sub}: only in shadow")
            else:
                _walk(left[key], right[key], sub, out, secret=hidden)
        return
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        if len(left) != len(right):
            out.append(f"{label}: length {len(left)} != {len(right)}")
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            _walk(a, b, f"{path}[{index}]", out, secret=secret)
        return
    if not _equal(left, right):
        if secret or _is_secret_value(left) or _is_secret_value(right):
            out.append(f"{label}: {REDACTED} != {REDACTED}")
        else:
            out.append(f"{label}: {redact(left)} != {redact(right)}")


def _equal(left: Any, right: Any) -> bool:
    left, right = _secret_plain(left), _secret_plain(right)
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    try:
        same = bool(left == right)
    except Exception:
        return False
    # "8080" and 8080 are a real difference between two loaders; 1 and 1.0 are not.
    return same and (type(left) is type(right) or (_numeric(left) and _numeric(right)))


_ATOMS = frozenset({str, int, float, bool, bytes, type(None)})


def _identical(left: Any, right: Any) -> bool:
    """Given ``left == right``: whether the walk would agree, that is, the same exact plain types
    (dicts, lists, tuples, atoms) all the way down; anything else is left to the walk.

    Plain loops rather than ``all()`` over a generator: this runs on every comparison, and the
    loops are three times faster.
    """
    kind = type(left)
    if kind is not type(right):
        return False
    if kind in _ATOMS:
        return True
    if kind is dict:
        for key, mine in left.items():
            theirs = right[key]
            item = type(mine)
            if item is not type(theirs) or (item not in _ATOMS and not _identical(mine, theirs)):
                return False
        return True
    if kind is list or kind is tuple:
        for mine, theirs in zip(left, right, strict=False):  # equal lengths: left == right
            item = type(mine)
            if item is not type(theirs) or (item not in _ATOMS and not _identical(mine, theirs)):
                return False
        return True
    return False


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def _is_secret_value(value: object) -> bool:
    return type(value).__name__ in ("SecretStr", "SecretBytes")


def _secret_plain(value: Any) -> Any:
    if _is_secret_value(value):
        return ("secret", value.get_secret_value())
    return value


def _hashable(row: Any) -> Any:
    if isinstance(row, list | tuple):
        return tuple(_hashable(item) for item in row)
    if isinstance(row, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in row.items()))
    try:
        hash(row)
    except TypeError:
        return repr(row)
    return row

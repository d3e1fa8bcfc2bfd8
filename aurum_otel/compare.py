"""Comparators: how a shadow's result is judged against the authoritative one.

A comparator is any callable ``(authoritative, shadow) -> bool | ComparisonResult``. The default,
:func:`deep_compare`, walks dicts, sequences, sets, dict views, dataclasses and pydantic models
and reports where and how the two results differ, never what they hold (see
:mod:`aurum_otel.redact`): ``port: int != str``, ``host: str(len 9)#1f2e3d4c != str(len 9)#9a8b7c6d``,
``tags: length 2 != 1``, ``password: <redacted> != <redacted>``.

Two results that cannot be compared honestly (two distinct generators or iterators, objects whose
``==`` is identity or raises) are neither a match nor a mismatch: the result is *incomparable*
(``comparable=False``, with the ``reason``). NaN equals NaN here: a comparison of results asks
whether both implementations returned the same thing, and both returned NaN.

Whatever a comparator returns goes through :func:`as_result`, which keeps the library's own
(value-free) lines and reduces any other text to its leading path (:func:`~aurum_otel.redact.sanitize`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from types import AsyncGeneratorType, CoroutineType, GeneratorType
from typing import Any

from aurum_otel.redact import (
    REDACTED,
    ValueFree,
    describe,
    is_secret_key,
    is_secret_value,
    name_or_describe,
    sanitize,
)

__all__ = [
    "EQUAL", "MAX_DIFFERENCES", "REDACTED", "Comparator", "ComparisonResult", "ValueFree", "as_result",
    "deep_compare", "is_secret_key", "redact", "unordered_rows",
]

MAX_DIFFERENCES = 20


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """The verdict of one comparison, with value-free differences.

    Attributes:
        equal: whether the two results are the same.
        differences: where and how they differ (paths, types, lengths, keyed hashes).
        comparable: ``False`` when the results could not be compared honestly (two generators,
            objects whose ``==`` is identity); then ``equal`` is ``False`` too, and the call path
            counts the comparison as incomparable, never as a mismatch.
        reason: why not comparable (``"value: generator objects cannot be compared"``).
    """

    equal: bool
    differences: tuple[str, ...] = ()
    comparable: bool = True
    reason: str = ""

    @classmethod
    def incomparable(cls, reason: str) -> ComparisonResult:
        """A result that says the two values could not be compared, and why."""
        return cls(False, (f"not comparable: {reason}",), comparable=False, reason=reason)


EQUAL = ComparisonResult(True)
"""What every comparison that found no difference returns (immutable, so shared: a match costs
no allocation on the call path)."""

Comparator = Callable[[Any, Any], "bool | ComparisonResult"]


def redact(value: object) -> str:
    """A value-free rendering of a value (kept for callers of the old name; see ``describe``)."""
    return describe(value)


def deep_compare(authoritative: object, shadow: object) -> ComparisonResult:
    """Deep equality with field-level, value-free differences (the default comparator)."""
    try:
        # The usual case, equal results of plain types, settled without building any text.
        if authoritative == shadow and _identical(authoritative, shadow):
            return EQUAL
    except Exception:
        pass  # an == that raises: the walk below judges field by field
    walk = _Walk()
    walk.run(authoritative, shadow, "")
    if walk.out:
        return ComparisonResult(False, tuple(walk.out[:MAX_DIFFERENCES]))
    if walk.incomparable:
        return _incomparable(walk.incomparable[0])
    return EQUAL


def unordered_rows(authoritative: object, shadow: object) -> ComparisonResult:
    """Compare two row lists as multisets: the comparator for queries without ORDER BY."""
    if not isinstance(authoritative, list | tuple) or not isinstance(shadow, list | tuple):
        return deep_compare(authoritative, shadow)
    originals: dict[Any, Any] = {}
    left = Counter(_hashable(row, originals) for row in authoritative)
    right = Counter(_hashable(row, originals) for row in shadow)
    if left == right:
        return EQUAL
    differences = ([_line(f"rows: {len(authoritative)} != {len(shadow)}")]
                   if len(authoritative) != len(shadow) else [])
    for row, count in (left - right).items():
        differences.append(
            _line(f"row only in authoritative (x{count}): {describe(originals[row])}"))
    for row, count in (right - left).items():
        differences.append(_line(f"row only in shadow (x{count}): {describe(originals[row])}"))
    return ComparisonResult(False, tuple(differences[:MAX_DIFFERENCES]))


def as_result(outcome: bool | ComparisonResult) -> ComparisonResult:
    """A comparator's outcome as a :class:`ComparisonResult` whose text holds no user value.

    Lines the library built (and lines a comparator wrapped in :class:`ValueFree`) are kept; any
    other line keeps only its leading path (``host: custom difference (len 12)#1f2e3d4c``); at most
    :data:`MAX_DIFFERENCES` lines.
    """
    if outcome is EQUAL:  # the usual case: nothing to check
        return outcome
    if not isinstance(outcome, ComparisonResult):
        return EQUAL if outcome else ComparisonResult(False, ("values differ",))
    given = outcome.differences
    differences = tuple(given)
    reason = outcome.reason
    if isinstance(given, tuple) and len(differences) <= MAX_DIFFERENCES and all(
        isinstance(line, ValueFree) for line in differences
    ) and (not reason or isinstance(reason, ValueFree)):
        return outcome
    clean = tuple(sanitize(line) for line in differences[:MAX_DIFFERENCES])
    return ComparisonResult(bool(outcome.equal), clean, comparable=bool(outcome.comparable),
                            reason=sanitize(reason) if reason else "")


def _line(text: str) -> ValueFree:
    return ValueFree(text)


def _incomparable(reason: str) -> ComparisonResult:
    return ComparisonResult(False, (_line(f"not comparable: {reason}"),), comparable=False,
                            reason=_line(reason))


class _Walk:
    """One walk over two values, collecting differences and the parts that cannot be compared."""

    __slots__ = ("incomparable", "out")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.incomparable: list[str] = []

    def run(self, left: Any, right: Any, path: str) -> None:
        if len(self.out) >= MAX_DIFFERENCES or left is right:
            return
        left, right = _plain(left), _plain(right)
        label = path or "value"
        if is_secret_value(left) or is_secret_value(right):
            if not _equal(_secret_plain(left), _secret_plain(right)):
                self.out.append(_line(f"{label}: {REDACTED} != {REDACTED}"))
            return
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            self._mapping(left, right, path)
        elif _sequence(left) and _sequence(right):
            left, right = _as_list(left), _as_list(right)
            if len(left) != len(right):
                self.out.append(_line(f"{label}: length {len(left)} != {len(right)}"))
            for index, (a, b) in enumerate(zip(left, right, strict=False)):
                self.run(a, b, f"{path}[{index}]")
        elif _set_like(left) and _set_like(right):
            self._set(left, right, label)
        else:
            self._leaf(left, right, label)

    def _mapping(self, left: Mapping[Any, Any], right: Mapping[Any, Any], path: str) -> None:
        for key in sorted(set(left) | set(right), key=str):
            name = name_or_describe(key)
            sub = (f"{path}.{name}" if path else name) if name is key else f"{path}[{name}]"
            if key not in right:
                self.out.append(_line(f"{sub}: only in authoritative"))
            elif key not in left:
                self.out.append(_line(f"{sub}: only in shadow"))
            elif is_secret_key(key):
                # A secret subtree is opaque: one line, no length, no hash, no inner path.
                inner = _Walk()
                inner.run(left[key], right[key], sub)
                if inner.out:
                    self.out.append(_line(f"{sub}: {REDACTED} != {REDACTED}"))
                if inner.incomparable:
                    self.incomparable.append(f"{sub}: {REDACTED} cannot be compared")
            else:
                self.run(left[key], right[key], sub)

    def _set(self, left: Any, right: Any, label: str) -> None:
        try:
            mine, theirs = set(left), set(right)
            if mine != theirs:
                only_left, only_right = len(mine - theirs), len(theirs - mine)
                parts = [f"{n} only in {side}" for n, side in
                         ((only_left, "authoritative"), (only_right, "shadow")) if n]
                self.out.append(_line(f"{label}: {', '.join(parts)}"))
                return
            matched = {item: item for item in theirs}
            for item in mine:
                other = matched[item]
                if type(item) is not type(other) and not (_numeric(item) and _numeric(other)):
                    self.out.append(_line(f"{label}: an element {type(item).__name__} != "
                                          f"{type(other).__name__}"))
                    return
        except Exception as exc:
            self.incomparable.append(f"{label}: sets cannot be compared ({type(exc).__name__})")

    def _leaf(self, left: Any, right: Any, label: str) -> None:
        kind = type(left)
        if _is_iterator(left) and _is_iterator(right):
            names = sorted({kind.__name__, type(right).__name__})
            self.incomparable.append(f"{label}: {' and '.join(names)} objects cannot be compared")
            return
        if kind is type(right) and _identity_only(left):
            self.incomparable.append(f"{label}: {kind.__name__} objects cannot be compared "
                                     "(== is identity)")
            return
        try:
            same = _equal(left, right)
        except Exception as exc:
            self.incomparable.append(f"{label}: {kind.__name__} objects cannot be compared "
                                     f"(== raised {type(exc).__name__})")
            return
        if same:
            return
        if kind is not type(right) and not (_numeric(left) and _numeric(right)):
            self.out.append(_line(f"{label}: {kind.__name__} != {type(right).__name__}"))
        else:
            self.out.append(_line(f"{label}: {describe(left)} != {describe(right)}"))


def _equal(left: Any, right: Any) -> bool:
    """Leaf equality; raises what ``==`` (or its truth value) raises."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    same = bool(left == right)
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
            if item is not type(theirs):
                return False
            if item not in _ATOMS and not _identical(mine, theirs):
                return False
        return True
    if kind is list or kind is tuple:
        for mine, theirs in zip(left, right, strict=False):  # equal lengths: left == right
            item = type(mine)
            if item is not type(theirs):
                return False
            if item not in _ATOMS and not _identical(mine, theirs):
                return False
        return True
    return False




def _sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | ValuesView)


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, ValuesView) else value


def _set_like(value: Any) -> bool:
    return isinstance(value, set | frozenset | KeysView)


def _is_iterator(value: Any) -> bool:
    return isinstance(value, Iterator | GeneratorType | CoroutineType | AsyncGeneratorType) or (
        hasattr(type(value), "__anext__"))


def _identity_only(value: Any) -> bool:
    """Whether ``value``'s type compares by identity alone, so two instances say nothing.

    Enum members and classes are values whose identity *is* their value: those are compared.
    """
    eq: Any = type(value).__eq__
    return eq is object.__eq__ and not isinstance(value, type | enum.Enum)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, type):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, ItemsView):
        return dict(value)
    return value


def _secret_plain(value: Any) -> Any:
    if is_secret_value(value):
        return ("secret", value.get_secret_value())
    return value


def _hashable(row: Any, originals: dict[Any, Any]) -> Any:
    key = _freeze(row)
    originals.setdefault(key, row)
    return key


def _freeze(row: Any) -> Any:
    if isinstance(row, list | tuple):
        return tuple(_freeze(item) for item in row)
    if isinstance(row, dict):
        return ("dict", tuple(sorted(((k, _freeze(v)) for k, v in row.items()), key=repr)))
    try:
        hash(row)
    except TypeError:
        return ("unhashable", repr(row))  # a key only, never shown
    return row

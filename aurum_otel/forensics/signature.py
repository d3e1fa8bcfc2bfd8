"""A mismatch's signature: which paths differ and how, as a short stable hash.

The signature is derived from the value-free difference lines of :mod:`aurum_otel.compare`
(``port: int != str``, ``tags: length 2 != 1``, ``host: only in shadow``, ``password: <redacted>
!= <redacted>``, ``host: str(len 9)#1f2e3d4c != str(len 9)#9a8b7c6d``) reduced to *shape*
components: the path with list indexes as ``[*]`` and described keys as their type, and the kind
of difference (``type int!=str``, ``value``, ``missing``, ``extra``, ``length``, ``members``,
``order``). Values, hashes and lengths are dropped, so the same bug gives the same signature on
every input and in every process; a different path or kind gives a different one.

``order`` cannot be read from the lines (a reordered list differs at each index): it is found on
the raw results by :func:`order_paths` (two equal-length sequences holding the same items), and
the differences under such a path collapse into one ``order`` component.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from aurum_otel.redact import name_or_describe

LENGTH = 12  # hex digits: 48 bits, no collision in any realistic number of distinct bugs

_INDEX = re.compile(r"\[\d+\]")
_DESCRIBED_KEY = re.compile(r"\[([A-Za-z_][\w]*)(?:\(len \d+\))?(?:#[0-9a-f]{8})?\]")
_TYPE_NAME = r"[A-Za-z_][\w]*"
_TYPES = re.compile(rf"({_TYPE_NAME}) != ({_TYPE_NAME})")
_ELEMENT = re.compile(rf"an element ({_TYPE_NAME}) != ({_TYPE_NAME})")
_SET = re.compile(r"(?:\d+ only in (?:authoritative|shadow)(?:, )?)+")
_ROW = re.compile(r"row only in (authoritative|shadow) \(x\d+\)")
_MAX_ORDER_ITEMS = 1_000
_MAX_ORDER_DEPTH = 8


def normalize_path(path: str) -> str:
    """``rows[3].tags[str(len 5)#1a2b3c4d]`` -> ``rows[*].tags[str]``."""
    return _DESCRIBED_KEY.sub(r"[\1]", _INDEX.sub("[*]", path))


def component(line: str) -> str:
    """One difference line as its shape component (``path: kind``)."""
    if line.startswith("reason: "):
        return line  # the run's own reason (timeout, uncopyable arguments): already value-free
    if line.startswith(("iterating the result raised ", "comparator raised ")):
        return line
    if line == "values differ":
        return "value: value"
    match = _ROW.match(line)
    if match:
        return "rows[*]: " + ("missing" if match.group(1) == "authoritative" else "extra")
    path, sep, rest = line.partition(": ")
    if not sep:
        return "value: other"
    return f"{normalize_path(path)}: {_kind(rest)}"


def _kind(rest: str) -> str:
    if rest == "only in authoritative":
        return "missing"
    if rest == "only in shadow":
        return "extra"
    if rest.startswith("length ") or re.fullmatch(r"\d+ != \d+", rest):
        return "length"
    element = _ELEMENT.fullmatch(rest)
    if element:
        return f"type {element.group(1)}!={element.group(2)}"
    if _SET.fullmatch(rest):
        return "members"
    types = _TYPES.fullmatch(rest)
    if types and types.group(1) != types.group(2):  # same names: two undescribable values
        return f"type {types.group(1)}!={types.group(2)}"
    return "value"  # described values, <redacted> pairs, custom lines: what differs is a value


def shape(differences: Iterable[str], *, order: Iterable[str] = (),
          authoritative_error: str | None = None, shadow_error: str | None = None) -> tuple[str, ...]:
    """The sorted, de-duplicated components of one mismatch.

    Args:
        differences: the comparator's (value-free) lines.
        order: normalized paths whose sequences hold the same items in another order.
        authoritative_error: the exception type the authoritative side raised, if any.
        shadow_error: the exception type the shadow raised, if any.
    """
    reordered = sorted(set(order))
    parts: set[str] = set()
    for line in differences:
        if line.startswith("not comparable: "):
            continue
        part = component(line)
        path = part.partition(": ")[0]
        owner = next((p for p in reordered if path == p or path.startswith((p + "[", p + "."))),
                     None)
        parts.add(f"{owner}: order" if owner is not None else part)
    if authoritative_error or shadow_error:
        parts.add(f"raised: {authoritative_error or '-'} -> {shadow_error or '-'}")
    return tuple(sorted(parts)) or ("value: other",)


def signature_of(components: Iterable[str]) -> str:
    """A short stable hex hash of a shape (the same set of components, the same signature)."""
    text = "\n".join(sorted(set(components)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:LENGTH]


def order_paths(authoritative: Any, shadow: Any) -> tuple[str, ...]:
    """Normalized paths where both results hold a sequence of the same items in another order."""
    found: list[str] = []
    _walk(authoritative, shadow, "", found, 0)
    return tuple(sorted(set(found)))


def _walk(left: Any, right: Any, path: str, found: list[str], depth: int) -> None:
    if depth > _MAX_ORDER_DEPTH or len(found) > 20:
        return
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key in list(left)[:_MAX_ORDER_ITEMS]:
            if key in right:
                name = name_or_describe(key)
                sub = (f"{path}.{name}" if path else name) if name is key else f"{path}[{name}]"
                _walk(left[key], right[key], sub, found, depth + 1)
        return
    if not (isinstance(left, list | tuple) and isinstance(right, list | tuple)):
        return
    if len(left) != len(right) or len(left) > _MAX_ORDER_ITEMS:
        return
    try:
        if left == right:
            return
        if _permutation(left, right):
            found.append(normalize_path(path or "value"))
            return
    except Exception:
        return
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        _walk(a, b, f"{path}[{index}]", found, depth + 1)


def _permutation(left: Any, right: Any) -> bool:
    try:
        return Counter(left) == Counter(right)
    except TypeError:  # unhashable items: compare their reprs as multisets
        return Counter(map(repr, left)) == Counter(map(repr, right))

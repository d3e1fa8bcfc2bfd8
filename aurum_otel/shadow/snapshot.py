"""Snapshots: the shadow's own copies of a call's instance, arguments and result.

Immutable values are shared. The rest is pickled on the caller's thread (C speed: ~10x cheaper
than ``copy.deepcopy`` for a small dict, ~20x for a page of rows) and rebuilt on the shadow's;
what pickle refuses (local classes, lambdas) falls back to ``copy.deepcopy``. A value neither can
copy is reported, never shared, and user code run by the copy (``__reduce__``, ``__deepcopy__``)
can never raise into the caller.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import sys
from collections.abc import Iterator
from typing import Any

_ATOMIC = frozenset({str, int, float, bool, bytes, type(None)})
_IMMUTABLE = (str, int, float, bool, bytes)


def immutable(value: Any) -> bool:
    """Whether ``value`` can be shared with a shadow as it is (nothing in it can change)."""
    kind = type(value)
    if kind in _ATOMIC:
        return True
    if kind is tuple or kind is frozenset:
        for item in value:  # noqa: SIM110 (a loop, atoms without a call: ~3x all() here)
            if type(item) not in _ATOMIC and not immutable(item):
                return False
        return True
    # A subclass of an atom is shared only if it carries nothing of its own that could change:
    # no __dict__ and no slots (read off its type, never the value: no user code runs here).
    for base in _IMMUTABLE:
        if issubclass(kind, base):  # a proxy that says it is a str is not one: never shared
            return bool(_dict_offset(kind) == 0 and _basic_size(kind) == _basic_size(base))
    return False


# The type's real layout, as the interpreter keeps it (a metaclass cannot say otherwise).
_dict_offset = type.__dict__["__dictoffset__"].__get__
_basic_size = type.__dict__["__basicsize__"].__get__


class Pickled:
    """A snapshot taken with pickle, rebuilt on the shadow's thread by :func:`thaw`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


UNCOPYABLE: tuple[bool, Any] = (False, None)
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_new = object.__new__


def take(value: Any) -> tuple[bool, Any]:
    """``(True, snapshot)``, or :data:`UNCOPYABLE` when ``value`` cannot be copied.

    Immutable values are their own snapshot. Never raises (but a ``KeyboardInterrupt``, which is
    the user's, not the value's).
    """
    try:
        kind = type(value)
        # a dict or list (the usual result) is never immutable: pickled without asking
        if kind is not dict and kind is not list and immutable(value):
            return True, value
        try:
            data = pickle.dumps(value, _PROTOCOL)
        except KeyboardInterrupt:
            raise
        except BaseException:  # what pickle refuses (a local class, a lambda): copy.deepcopy
            return _deep_copy(value)
        snapshot = _new(Pickled)  # without a call to __init__: every shadowed call's result
        snapshot.data = data
        return True, snapshot
    except KeyboardInterrupt:
        raise
    except BaseException:  # user code in __reduce__/__eq__/__getattr__: never the caller's problem
        return UNCOPYABLE


def _deep_copy(value: Any) -> tuple[bool, Any]:
    try:
        return True, copy.deepcopy(value)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return UNCOPYABLE


def thaw(snapshot: Any) -> Any:
    """The value a :func:`take` snapshot stands for (a fresh object for a pickled one)."""
    return pickle.loads(snapshot.data) if type(snapshot) is Pickled else snapshot


def shared_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """What a call's arguments count against the budget when a shadow shares them as they are
    (:func:`size_of` of ``(None, args, kwargs)``), or ``None`` when something in them could
    change, so they must be copied. One walk instead of :func:`immutable`'s and ``size_of``'s."""
    total = 0
    for values in (args, kwargs.values()) if kwargs else (args,):
        for item in values:
            kind = type(item)
            if kind is str or kind is bytes:
                total += len(item)
            elif kind not in _ATOMIC:
                if not immutable(item):
                    return None
                total += size_of(item)
    return total


def size_of(snapshot: Any) -> int:
    """The bytes a snapshot holds, as counted against the shadows' memory budget.

    Exact for pickled snapshots; shared strings and bytes count their length; anything else
    counts its shallow size (a deep-copied value is rare: what pickle refused).
    """
    kind = type(snapshot)
    if kind is Pickled:
        return len(snapshot.data)
    if kind is str or kind is bytes:
        return len(snapshot)
    if kind in _ATOMIC:
        return 0
    if kind is tuple or kind is dict:
        # A loop, not sum() over a generator, and atoms counted in place (no call): this runs
        # for every shadowed call (issue 19).
        total = 0
        for item in snapshot if kind is tuple else snapshot.values():
            item_kind = type(item)
            if item_kind is str or item_kind is bytes:
                total += len(item)
            elif item_kind not in _ATOMIC and (item_kind is not dict or item):  # {}: no call
                total += size_of(item)
        return total
    try:
        return sys.getsizeof(snapshot, 64)
    except Exception:  # user code (__sizeof__): a size it cannot tell is a guess, never an error
        return 64

MAX_ITEMS = 100_000
"""An iterator result is compared by its first items; one longer than this is incomparable."""


class Endless(Exception):
    """An iterator result longer than :data:`MAX_ITEMS`."""


# Exact types that are never iterators: skips the ABC check (~0.15 µs, twice per shadow).
_NOT_ITERATORS = frozenset({dict, list, tuple, str, bytes, int, float, bool, type(None), set,
                            frozenset})


def materialized(value: Any) -> Any:
    """An iterator result as the list of its items (ours to consume: a snapshot or the shadow's
    own result); anything else as it is."""
    if type(value) in _NOT_ITERATORS or not isinstance(value, Iterator):
        return value
    items = list(itertools.islice(value, MAX_ITEMS + 1))
    if len(items) > MAX_ITEMS:
        raise Endless
    return items

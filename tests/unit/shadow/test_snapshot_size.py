"""What a shadow's snapshots count against the executor's memory budget (``size_of``)."""

from __future__ import annotations

import pickle
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aurum_otel.shadow.snapshot import Pickled, immutable, shared_size, size_of, take

_ATOMS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   st.text(max_size=20), st.binary(max_size=20))
_VALUES = st.recursive(
    _ATOMS | st.lists(_ATOMS, max_size=3),
    lambda inner: st.tuples(inner, inner) | st.dictionaries(st.text(max_size=5), inner,
                                                            max_size=3),
    max_leaves=12)


def _reference(snapshot: Any) -> int:
    """The budget's rule, spelt plainly: a pickled snapshot its bytes, a shared string or bytes
    its length, other atoms nothing, a tuple or dict the sum of its items, anything else its
    shallow size."""
    if type(snapshot) is Pickled:
        return len(snapshot.data)
    if type(snapshot) in (str, bytes):
        return len(snapshot)
    if type(snapshot) in (int, float, bool, type(None)):
        return 0
    if type(snapshot) in (tuple, dict):
        items = snapshot if type(snapshot) is tuple else snapshot.values()
        return sum(_reference(item) for item in items)
    return sys.getsizeof(snapshot, 64)


@given(_VALUES)
def test_size_of_counts_what_the_budget_rule_says(value: Any) -> None:
    assert size_of(value) == _reference(value)
    copied, snapshot = take(value)
    assert copied and size_of(snapshot) == _reference(snapshot)


def test_a_call_payload_counts_its_strings_and_pickled_parts() -> None:
    pickled = Pickled(pickle.dumps({"a": [1, 2]}))
    payload = (None, ("abc", 7, b"xy", pickled), {"k": "vwxyz", "n": 1.5})
    assert size_of(payload) == 3 + 2 + len(pickled.data) + 5


_BUILTINS = (object, str, int, float, bool, bytes)


def _shareable(value: Any) -> bool:
    """Which values a shadow may share with its caller, spelt plainly: atoms, and tuples and
    frozensets of shareable values; a subclass of an atom only if no class of its own gives it a
    ``__dict__`` or a slot."""
    if type(value) in (str, int, float, bool, bytes, type(None)):
        return True
    if type(value) in (tuple, frozenset):
        return all(_shareable(item) for item in value)
    own = [klass for klass in type(value).__mro__ if klass not in _BUILTINS]
    return isinstance(value, str | int | float | bool | bytes) and all(
        "__dict__" not in vars(klass) and not getattr(klass, "__slots__", None) for klass in own)


class _Tagged(str):
    pass


class _Bare(str):
    __slots__ = ()


class _BareInt(int):
    __slots__ = ()


class _BareBytes(bytes):
    __slots__ = ()


class _Slotted(float):
    __slots__ = ("unit",)


class _BareChild(_Bare):
    __slots__ = ()


_SUBCLASSED = (st.builds(_Tagged, st.text(max_size=3)) | st.builds(_Bare, st.text(max_size=3))
               | st.builds(_BareInt, st.integers()) | st.builds(_BareBytes, st.binary(max_size=3))
               | st.builds(_Slotted, st.floats(allow_nan=False))
               | st.builds(_BareChild, st.text(max_size=3)))

_SHAREABLE_OR_NOT = st.recursive(
    _ATOMS | st.lists(_ATOMS, max_size=2) | _SUBCLASSED,
    lambda inner: (st.tuples(inner, inner) | st.lists(inner, max_size=2).map(tuple)
                   | st.frozensets(_ATOMS, max_size=3)),
    max_leaves=10)


@given(_SHAREABLE_OR_NOT)
def test_immutable_says_what_the_sharing_rule_says(value: Any) -> None:
    assert immutable(value) is _shareable(value)


@given(st.lists(_SHAREABLE_OR_NOT, max_size=4).map(tuple),
       st.dictionaries(st.text(max_size=4), _SHAREABLE_OR_NOT, max_size=3))
def test_shared_arguments_count_as_their_payload_would(args: tuple[Any, ...],
                                                       kwargs: dict[str, Any]) -> None:
    """``shared_size`` is ``size_of((None, args, kwargs))`` for arguments a shadow may share,
    and ``None`` for arguments it may not (they are copied)."""
    shareable = _shareable(args) and all(_shareable(value) for value in kwargs.values())
    assert shared_size(args, kwargs) == (size_of((None, args, kwargs)) if shareable else None)


class _LyingMeta(type):
    __dictoffset__ = property(lambda cls: 0)  # type: ignore[assignment]
    __basicsize__ = property(lambda cls: str.__basicsize__)  # type: ignore[assignment]


class _Liar(str, metaclass=_LyingMeta):
    pass


def test_a_metaclass_cannot_talk_a_mutable_subclass_into_being_shared() -> None:
    """The sharing rule reads the type's real layout, not what its metaclass says."""
    value = _Liar("a")
    value.note = [1]  # type: ignore[attr-defined]  # it has a __dict__ after all
    assert not immutable(value)


def test_a_proxy_of_an_atom_is_not_shared() -> None:
    """A proxy that says it is a str (wrapt, werkzeug's LocalProxy) can be re-pointed, or resolve
    differently on the shadow's thread: it is never shared as it is."""
    import wrapt

    assert not immutable(wrapt.ObjectProxy("bob"))
    assert shared_size((wrapt.ObjectProxy("bob"),), {}) is None

"""A method under ``@migrated`` stacked over another wrapt-based decorator (an agent's, a library's
``@deprecated``): its shadow still runs the plain function on its own copy of the instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wrapt

from aurum_otel import FileStore, Phase, Rollout, migrated, testing


@wrapt.decorator
def _logged(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


class _Cart:
    def __init__(self) -> None:
        self.total = 0

    def _add(self, amount: int) -> int:
        self.total += amount
        return self.total

    add = migrated("stacked_cart")(_logged(_add))  # @migrated over @_logged
    add.simplified(_add)


def test_a_legacy_shadow_under_a_wrapt_decorator_runs_on_its_own_instance(
        tmp_path: Path) -> None:
    FileStore.in_dir(tmp_path).transition(
        "stacked_cart", Phase.HYBRID, Rollout(percent=100, compare=100), actor="t", reason="t")
    with testing.capture(state_dir=tmp_path) as telemetry:
        cart = _Cart()
        assert cart.add(10) == 10  # simplified serves
        telemetry.wait_for_shadows()
        assert cart.total == 10  # the legacy shadow ran on its own copy, not the caller's cart
        (shadow,) = telemetry.spans("shadow stacked_cart")
        attributes = dict(shadow.attributes or {})
        assert attributes.get("aurum.migration.comparison") == "match", attributes
        assert "error.type" not in attributes


class _Amount(int):
    __slots__ = ()

    def __sizeof__(self) -> int:
        raise SystemExit("from __sizeof__")


@migrated("odd_argument")
def _plus_one(amount: int) -> int:
    return int(amount) + 1


@_plus_one.simplified
def _plus_one_v2(amount: int) -> int:
    return int(amount) + 1


def test_an_argument_whose_size_cannot_be_told_never_fails_the_call(tmp_path: Path) -> None:
    """Sharing the arguments with the shadow runs before the authoritative; an argument whose
    ``__sizeof__`` raises (even ``SystemExit``) costs the shadow, never the call."""
    FileStore.in_dir(tmp_path).transition(
        "odd_argument", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert _plus_one(_Amount(5)) == 6
        telemetry.wait_for_shadows()
        (shadow,) = telemetry.spans("shadow odd_argument")
        attributes = dict(shadow.attributes or {})
        assert attributes.get("aurum.migration.comparison") == "skipped"
        assert attributes.get("aurum.migration.comparison.reason") == "uncopyable_arguments"


class _Price(float):
    """An atom subclass with a slot of its own: it can change, so it is never shared."""

    __slots__ = ("currency",)


@migrated("slotted_argument")
def _in_dollars(price: _Price) -> float:
    answer = float(price) if price.currency == "USD" else -1.0
    price.currency = "EUR"  # the authoritative changes its argument after reading it
    return answer


@_in_dollars.simplified
def _in_dollars_v2(price: _Price) -> float:
    return float(price) if price.currency == "USD" else -1.0


def test_an_argument_with_a_slot_of_its_own_is_copied_for_the_shadow(tmp_path: Path) -> None:
    FileStore.in_dir(tmp_path).transition(
        "slotted_argument", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    price = _Price(9.5)
    price.currency = "USD"
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert _in_dollars(price) == 9.5
        telemetry.wait_for_shadows()
        (shadow,) = telemetry.spans("shadow slotted_argument")
        assert dict(shadow.attributes or {}).get("aurum.migration.comparison") == "match"
    assert price.currency == "EUR"  # the caller's own object is the authoritative's to change


@migrated("deep_argument")
def _one(value: object) -> int:
    return 1


@_one.simplified
def _one_v2(value: object) -> int:
    return 1


def test_an_argument_too_deep_to_walk_never_fails_the_call(tmp_path: Path) -> None:
    """A tuple nested deeper than the interpreter's recursion limit: walking it to share it
    with the shadow raises RecursionError, which costs the shadow, never the call."""
    FileStore.in_dir(tmp_path).transition(
        "deep_argument", Phase.HYBRID, Rollout(percent=0, compare=100), actor="t", reason="t")
    deep: tuple[object, ...] = ()
    for _ in range(100_000):
        deep = (deep,)
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert _one(deep) == 1
        telemetry.wait_for_shadows()
        (shadow,) = telemetry.spans("shadow deep_argument")
        attributes = dict(shadow.attributes or {})
        assert attributes.get("aurum.migration.comparison") == "skipped"
        assert attributes.get("aurum.migration.comparison.reason") == "uncopyable_arguments"

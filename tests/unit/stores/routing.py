"""A migrated function that says which implementation served it."""

from __future__ import annotations

from collections.abc import Callable

from aurum_otel import migrated


def which(name: str) -> Callable[[], str]:
    """``@migrated(name)``: legacy returns ``"legacy"``, simplified ``"simplified"``."""

    @migrated(name)
    def which() -> str:
        return "legacy"

    @which.simplified
    def _which_v2() -> str:
        return "simplified"

    return which

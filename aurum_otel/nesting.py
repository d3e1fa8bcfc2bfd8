"""Which migrations are inside a routed call in this context, and on which implementation.

A routed call made inside a routed call of the same migration (recursion, or an implementation
calling its own public entry point) follows the outer call's implementation and is neither
re-routed, shadowed nor counted again: ``fib(15)`` in hybrid is one routed call and one shadow,
not 1,973 of each. Shadows set it too, so a recursive shadow stays on its own side.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token

from aurum_otel.phase import Implementation

_active: ContextVar[Mapping[str, Implementation] | None] = ContextVar(
    "aurum_otel_active_migrations", default=None
)

Nest = Token[Mapping[str, Implementation] | None]


def current(name: str) -> Implementation | None:
    """The implementation serving the routed call of ``name`` this code runs inside, if any."""
    active = _active.get()
    return None if active is None else active.get(name)


def enter(name: str, implementation: Implementation) -> Nest:
    """Mark ``name`` as served by ``implementation`` until :func:`leave`."""
    active = _active.get()
    return _active.set({name: implementation} if active is None else
                       {**active, name: implementation})


def leave(token: Nest) -> None:
    _active.reset(token)

"""Moved to :mod:`aurum_otel.stores.redis`; this module keeps the old import path."""

from __future__ import annotations

from aurum_otel.stores.redis import (
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_INITIAL_WAIT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PREFIX,
    MAX_ATTEMPTS,
    URL_FORM,
    RedisStore,
)

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_INITIAL_WAIT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_PREFIX",
    "MAX_ATTEMPTS",
    "URL_FORM",
    "RedisStore",
]

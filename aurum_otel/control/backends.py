"""Where a phase store's control state and leases live: beside its files, or on its Redis server.

The Redis client is built lazily from ``AURUM_STATE_URL`` (redis is an optional extra).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from aurum_otel.control.lease import DEFAULT_TTL, FileLease, Holder, Lease, RedisLease
from aurum_otel.control.state import (
    ControlStore,
    FileControlStore,
    MemoryControlStore,
    RedisControlStore,
)
from aurum_otel.registry import get_registry
from aurum_otel.stores.base import PhaseStore
from aurum_otel.stores.file import FileStore

logger = logging.getLogger("aurum_otel.control")

_clients: dict[str, Any] = {}


def _redis(store: PhaseStore) -> tuple[Any, str] | None:
    """A client for the Redis server ``store`` is on, and its key prefix; ``None`` otherwise."""
    prefix = getattr(store, "prefix", None)
    url = get_registry().global_flags.state_url or ""
    if not isinstance(prefix, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _clients.get(url)
    if client is None:
        connection = importlib.import_module("aurum_otel.stores.redis_connection")
        client = _clients[url] = connection.client_from_url(url, {})
    return client, prefix


def control_store_for(store: PhaseStore) -> ControlStore:
    """The control state beside ``store``; in memory (with a warning) for other stores."""
    if isinstance(store, FileStore):
        return FileControlStore(store.path.parent)
    redis = _redis(store)
    if redis is not None:
        return RedisControlStore(redis[0], redis[1], store.location)
    logger.warning("phase store %s keeps no control state: pause, resume and approve only "
                   "reach this process", store.location)
    return MemoryControlStore()


def lease_for(store: PhaseStore, name: str, me: Holder, ttl: float = DEFAULT_TTL) -> Lease | None:
    """The lease on ``name`` for ``store`` (``None`` for a store that cannot hold one)."""
    if isinstance(store, FileStore):
        return FileLease(store.path.parent, name, me)
    redis = _redis(store)
    if redis is not None:
        return RedisLease(redis[0], f"{redis[1]}:lease:{name}", me, ttl, store.location)
    return None

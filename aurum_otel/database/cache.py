"""A bounded TTL cache of query results (the legacy client's read cache)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from aurum_otel.database.base import Params, Rows


class QueryCache:
    """Rows per (sql, params), kept ``ttl`` seconds, at most ``max_entries`` (least recent out).

    Hits return a copy, so a caller that mutates its result cannot change what the next caller
    gets. Parameters that are not hashable are simply not cached.
    """

    def __init__(
        self, ttl: float, *, max_entries: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Rows]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, sql: str, params: Params) -> Rows | None:
        key = _key(sql, params)
        if key is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1].copy()

    def put(self, sql: str, params: Params, rows: Rows) -> None:
        key = _key(sql, params)
        if key is None or self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, rows.copy())
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after a write: any cached read may now be stale)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _key(sql: str, params: Params) -> Hashable | None:
    values = tuple(params) if params else ()
    try:
        hash(values)
    except TypeError:
        return None
    # 1 and True hash alike; the types keep them apart.
    return (sql, values, tuple(type(value) for value in values))

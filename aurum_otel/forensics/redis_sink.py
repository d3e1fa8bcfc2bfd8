"""Captured examples in a capped Redis stream per migration (the redis extra).

The client is built on first use from the store's URL (its ``prefix`` query parameter is honoured,
the store's other own parameters are dropped), with short timeouts: a slow Redis costs the
capture writer thread, never a caller.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

DEFAULT_PREFIX = "aurum"
DEFAULT_MAX_ENTRIES = 10_000
_STORE_PARAMETERS = ("prefix", "history_limit", "poll_interval")


class RedisSink:
    """``XADD <prefix>:mismatches:<name> MAXLEN ~ max_entries * example <json>``."""

    def __init__(self, url: str, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 client: Any = None) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = dict(pair for pair in query if pair[0] in _STORE_PARAMETERS)
        self.prefix = own.get("prefix") or DEFAULT_PREFIX
        self._url = urlunsplit(parts._replace(
            query=urlencode([pair for pair in query if pair[0] not in _STORE_PARAMETERS])))
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        self.location = (f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path} "
                         f"(streams {self.prefix}:mismatches:*)")  # never the password
        self.max_entries = max_entries
        self._client = client
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        return f"{self.prefix}:mismatches:{name}"

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self._url, decode_responses=True, socket_connect_timeout=2.0,
                    socket_timeout=2.0)
            return self._client

    def append(self, name: str, line: str) -> None:
        self.client.xadd(self.key(name), {"example": line}, maxlen=self.max_entries,
                         approximate=True)

    def read(self, name: str, since: float | None = None) -> Iterator[dict[str, Any]]:
        start = f"{int(since * 1000)}-0" if since is not None else "-"
        for _, fields in self.client.xrange(self.key(name), min=start, max="+"):
            try:
                record = json.loads(fields.get("example", ""))
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("name") == name:
                yield record

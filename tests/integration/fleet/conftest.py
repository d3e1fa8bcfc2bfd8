"""The fleet tests' fixtures: the test server's URL under a key prefix of each test's own (its keys
deleted after), and stores that are closed after the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from aurum_otel.stores.redis import RedisStore  # noqa: E402
from tests.integration.fleet.support import URL  # noqa: E402


@pytest.fixture
def url() -> Iterator[str]:
    """The test server's URL under a key prefix of this test's own; the keys are deleted after."""
    prefix = f"aurum-test-{uuid.uuid4().hex[:10]}"
    yield f"{URL}{'&' if '?' in URL else '?'}prefix={prefix}"
    try:
        client = redis.Redis.from_url(URL, socket_connect_timeout=2)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@pytest.fixture
def stores() -> Iterator[Callable[..., RedisStore]]:
    made: list[RedisStore] = []

    def make(url: str, **options: Any) -> RedisStore:
        store = RedisStore.from_url(url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()

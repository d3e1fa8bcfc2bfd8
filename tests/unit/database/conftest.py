"""Fixtures of the database tests: a pair of sqlite clients, a routed client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aurum_otel.database import (
    LegacyTrinoClient,
    SimpleTrinoClient,
    get_trino_client,
)
from tests.unit.database.fakes import (
    memory_config,
)


@pytest.fixture
def sqlite_clients() -> Iterator[tuple[LegacyTrinoClient, SimpleTrinoClient]]:
    config = memory_config()
    legacy = LegacyTrinoClient(config)
    simple = SimpleTrinoClient(config)
    legacy.execute("CREATE TABLE curves (id INTEGER, name TEXT, price REAL)")
    for i in range(5):
        legacy.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", i * 1.5))
    yield legacy, simple
    legacy.close()
    simple.close()


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    name = f"file:routed-{uuid.uuid4().hex}?mode=memory&cache=shared"
    monkeypatch.setenv("AURUM_DATABASE_URL", f"sqlite:///{name}")
    client = get_trino_client("iceberg")
    client.legacy_client.execute("CREATE TABLE curves (id INTEGER, name TEXT, price REAL)")
    for i in range(4):
        client.legacy_client.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", i * 2.0))
    yield client
    client.close()

"""database.cache: the legacy client's read cache."""

from __future__ import annotations

from tests.unit.database.fakes import (
    Clock,
    FakeDB,
    legacy_client,
)


def test_ttl_cache_serves_reads_until_expiry_and_writes_clear_it() -> None:
    clock = Clock()
    db = FakeDB()
    client = legacy_client(db, clock=clock, cache_ttl=10.0)
    first = client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    first.append((99, "mutated by the caller"))
    again = client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 1 and again == [(1, "a"), (2, "b")]
    client.query("SELECT id, name FROM t WHERE id > ?", (1,))  # other params: a miss
    assert len(db.statements) == 2
    clock.advance(10.0)
    client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 3
    client.execute("INSERT INTO t VALUES (3, 'c')")
    client.query("SELECT id, name FROM t WHERE id > ?", (0,))
    assert len(db.statements) == 5

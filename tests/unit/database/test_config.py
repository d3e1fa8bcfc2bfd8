"""database.config: the connection config."""

from __future__ import annotations

from tests.unit.database.fakes import (
    CANARY,
    TRINO,
)


def test_config_repr_never_shows_the_password() -> None:
    assert CANARY not in repr(TRINO) and CANARY not in str(TRINO)
    assert TRINO.namespace == "iceberg.market"

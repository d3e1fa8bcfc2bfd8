"""database.connect: opening Trino and sqlite connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trino.auth
import trino.exceptions

from aurum_otel import ConfigurationError
from aurum_otel.database import (
    ConnectionConfig,
    sqlite_connect,
    trino_connect,
)
from tests.unit.database.fakes import (
    CANARY,
    TRINO,
)


def test_trino_connect_refuses_a_password_over_http() -> None:
    with pytest.raises(ConfigurationError) as caught:
        trino_connect(TRINO.copy(http_scheme="http"))
    assert caught.value.variable == "AURUM_TRINO__HTTP_SCHEME"
    assert "AURUM_TRINO__HTTP_SCHEME=https" in str(caught.value)
    assert CANARY not in str(caught.value)


def test_trino_connect_uses_basic_auth_over_https_without_a_request() -> None:
    connection: Any = trino_connect(TRINO)
    assert isinstance(connection.auth, trino.auth.BasicAuthentication)
    assert connection.http_scheme == "https" and connection.max_attempts == 1
    assert connection.catalog == "iceberg" and connection.schema == "market"
    connection.close()


def test_sqlite_connect_shares_one_memory_database() -> None:
    a = sqlite_connect(ConnectionConfig.sqlite())
    b = sqlite_connect(ConnectionConfig.sqlite())
    try:
        a.cursor().execute("CREATE TABLE IF NOT EXISTS shared_check (x INTEGER)")
        a.cursor().execute("INSERT INTO shared_check VALUES (7)")
        cursor = b.cursor()
        cursor.execute("SELECT x FROM shared_check")
        assert cursor.fetchall() == [(7,)]
    finally:
        a.cursor().execute("DROP TABLE shared_check")
        a.close()
        b.close()


def test_a_configured_ca_bundle_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # requests would otherwise let REQUESTS_CA_BUNDLE replace the session's CA (psf/requests#3829).
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    connection: Any = trino_connect(TRINO.copy(verify=str(bundle)))
    session = connection._http_session
    merged = session.merge_environment_settings("https://trino.test:8443/", {}, None, None, None)
    assert merged["verify"] == str(bundle)
    explicit = session.merge_environment_settings("https://trino.test:8443/", {}, None, False, None)
    assert explicit["verify"] is False
    connection.close()

"""database.routed: get_trino_client, its connection config, routing and shadows."""

from __future__ import annotations

import logging
import types
from pathlib import Path
from typing import Any

import pytest
import trino.auth
import trino.exceptions
from pydantic import SecretStr

from aurum_otel import ConfigurationError, Phase, Rollout, testing
from aurum_otel.database import (
    DatabaseUnavailableError,
    LegacyOptions,
    RetryPolicy,
    Rows,
    SimpleTrinoClient,
    connection_config,
    get_trino_client,
)
from aurum_otel.redact import describe
from aurum_otel.settings import AurumSettings, TrinoSettings
from tests.unit.database.fakes import (
    CANARY,
    FakeDB,
    set_phase,
)


def test_connection_config_falls_back_to_sqlite_without_trino(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert connection_config("iceberg").system == "sqlite"
    monkeypatch.setenv("AURUM_TRINO__HOST", "trino.internal")
    config = connection_config("hive")
    assert (config.system, config.host, config.catalog) == ("trino", "trino.internal", "hive")
    monkeypatch.setenv("AURUM_DATABASE_URL", "sqlite:///data/aurum.db")
    assert connection_config().path == "data/aurum.db"
    monkeypatch.delenv("AURUM_DATABASE_URL")
    explicit = AurumSettings(trino=TrinoSettings(host="localhost"))
    assert connection_config(settings=explicit).system == "trino"


def test_bad_database_url_is_a_configuration_error_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AURUM_DATABASE_URL", f"sqlite:memory:{CANARY}")
    with pytest.raises(ConfigurationError) as caught:
        get_trino_client()
    assert caught.value.variable == "AURUM_DATABASE_URL" and CANARY not in str(caught.value)


def test_writes_are_never_shadowed_so_rows_land_once(routed: Any, tmp_path: Path) -> None:
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=100))
        for i in range(10, 30):
            routed.execute("INSERT INTO curves VALUES (?, ?, ?)", (i, f"c{i}", 1.0))
        telemetry.wait_for_shadows()
        assert telemetry.spans("shadow database") == []
        served = {
            (span.attributes or {})["aurum.migration.implementation"]
            for span in telemetry.spans("migrate database")
        }
    assert served == {"legacy", "simplified"}
    rows = routed.legacy_client.query("SELECT id, count(*) FROM curves WHERE id >= 10 GROUP BY id")
    assert sorted(rows) == [(i, 1) for i in range(10, 30)]


def test_a_shadow_that_drops_a_row_is_reported(
    routed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    simple = routed.simplified_client
    real_query = simple.query

    def drop_last(self: SimpleTrinoClient, sql: str, params: Any = None) -> Rows:
        rows = real_query(sql, params)
        return Rows(rows[:-1], rows.columns, ordered=rows.ordered)

    simple.query = types.MethodType(drop_last, simple)  # a simplified path that loses a row
    caplog.set_level(logging.WARNING, logger="aurum_otel.mismatch")
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        routed.query("SELECT id, name FROM curves ORDER BY id")
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
    (record,) = [r for r in caplog.records if r.name == "aurum_otel.mismatch"]
    assert f"row only in authoritative (x1): {describe((3, 'c3'))}" in record.getMessage()
    assert "'c3'" not in record.getMessage()  # a row's values never reach the log (hex may hold c3)


def test_no_password_in_spans_metrics_or_logs_when_trino_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = FakeDB()
    db.fail(*(trino.exceptions.TrinoConnectionError(
        f"failed to fetch: https://aurum:{CANARY}@trino.test/v1/statement"
    ) for _ in range(10)))
    settings = AurumSettings(trino=TrinoSettings(
        host="trino.test", port=8443, password=SecretStr(CANARY), http_scheme="https",
    ))
    caplog.set_level(logging.DEBUG)
    client = get_trino_client("iceberg", settings=settings, connect=db.connect,
                              options=LegacyOptions(retry=RetryPolicy(base_delay=0, max_delay=0)))
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        with pytest.raises(DatabaseUnavailableError) as caught:
            client.query("SELECT 1")
        telemetry.wait_for_shadows()
        spans = telemetry.spans()
        exported = [str(dict(s.attributes or {})) + str(s.events) + str(s.status.description)
                    for s in spans]
        points = [str(attrs) for attrs, _ in telemetry.points("aurum.migration.calls")]
    client.close()
    db_spans = [s for s in spans if (s.attributes or {}).get("db.system.name") == "trino"]
    assert db_spans and all(
        (s.attributes or {})["server.address"] == "trino.test" for s in db_spans
    )
    assert CANARY not in str(caught.value)
    assert all(CANARY not in text for text in exported + points)
    assert all(CANARY not in r.getMessage() for r in caplog.records)

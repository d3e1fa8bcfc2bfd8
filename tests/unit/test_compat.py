"""The Aurum migration guide's snippets, run as written with the module path changed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, testing


def test_settings_snippets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), testing.capture(state_dir=tmp_path) as telemetry:
        from aurum_otel import (
            AurumSettings,
            advance_migration_phase,
            get_migration_metrics,
            log_migration_status,
            rollback_migration_phase,
            validate_migration_health,
        )

        # Create settings with current migration phase
        settings = AurumSettings.from_env()
        # Advance to hybrid phase
        success = advance_migration_phase("settings", "hybrid")
        # Check if migration is healthy
        health = validate_migration_health()
        if not health["healthy"]:
            print(f"Issues: {health['issues']}")
        # Log current status
        log_migration_status()
        # Get detailed metrics
        metrics = get_migration_metrics()
        status = metrics.get_migration_status()
        print(f"Settings phase: {status['settings_phase']}")
        print(f"Database phase: {status['database_phase']}")
        settings_ratio = metrics._get_simplified_ratio("settings_migration")
        if settings_ratio > 0.8:  # 80% of traffic on simplified
            advance_migration_phase("settings", "simplified")
        # Rollback if needed
        rollback_migration_phase("settings")
        # Rollback in phases
        advance_migration_phase("settings", "legacy")  # Full rollback
        advance_migration_phase("settings", "hybrid")  # Partial rollback

        assert settings.trino.catalog == "iceberg"
        assert success is True
        assert health["healthy"] and set(health["inconclusive"]) >= {"settings", "database"}
        assert settings_ratio == 0.0
        history = FileStore.in_dir(tmp_path).snapshot().records["settings"].history
        assert [h.to_phase for h in history] == [
            Phase.HYBRID, Phase.LEGACY, Phase.LEGACY, Phase.HYBRID]
        assert telemetry.counts("aurum.migration.transitions", name="settings") == 4
    out = capsys.readouterr().out
    assert "Settings phase: hybrid" in out and "Database phase: legacy" in out
    assert "migration settings: phase hybrid (from store)" in caplog.text


def test_database_snippets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with testing.capture(state_dir=tmp_path) as telemetry:
        from aurum_otel import (
            advance_db_migration_phase,
            get_db_migration_status,
            get_trino_client,
            rollback_db_migration_phase,
        )

        # Get client (automatically uses appropriate type based on flags)
        client = get_trino_client("iceberg")
        # Advance database migration
        advance_db_migration_phase("hybrid")
        # Check status
        status = get_db_migration_status()
        print(f"Using simple client: {status['using_simple']}")
        client.execute("CREATE TABLE IF NOT EXISTS guide (x INTEGER)")
        client.execute("INSERT INTO guide VALUES (1)")
        assert list(client.query("SELECT x FROM guide")) == [(1,)]
        telemetry.wait_for_shadows()
        # Rollback if needed
        rollback_db_migration_phase()
        assert get_db_migration_status()["phase"] == "legacy"
        assert telemetry.counts("aurum.migration.comparisons", name="database",
                                comparison="match") == 1
        client.close()
    assert "Using simple client: False" in capsys.readouterr().out  # shadow: legacy serves


def test_unknown_phase_is_a_clear_error() -> None:
    from aurum_otel import ConfigurationError, advance_migration_phase

    with pytest.raises(ConfigurationError, match="allowed: legacy, hybrid, simplified"):
        advance_migration_phase("settings", "halfway")

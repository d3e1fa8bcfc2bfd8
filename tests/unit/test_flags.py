from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, configure, read_flags
from aurum_otel.flags import FlagReader, GlobalFlags, variables_for


def resolve(name: str, tmp_path: Path) -> tuple[Phase, str, Rollout]:
    registry = configure(store=FileStore.in_dir(tmp_path), refresh_interval=0)
    resolved = registry.migration(name).resolved()
    return resolved.state.phase, resolved.state.source, resolved.state.rollout


# (environment, store phase, expected phase, expected source)
PRECEDENCE = [
    pytest.param({}, None, Phase.LEGACY, "default", id="nothing-set-is-legacy"),
    pytest.param({}, Phase.HYBRID, Phase.HYBRID, "store", id="store"),
    pytest.param({"AURUM_SETTINGS_MIGRATION_PHASE": "simplified"}, Phase.HYBRID,
                 Phase.SIMPLIFIED, "env", id="env-pin-beats-store"),
    pytest.param({"AURUM_MIGRATION_SETTINGS_PHASE": "hybrid"}, None, Phase.HYBRID, "env",
                 id="generic-pin"),
    pytest.param({"AURUM_USE_SIMPLIFIED_SETTINGS": "0", "AURUM_SETTINGS_MIGRATION_PHASE":
                  "simplified"}, Phase.SIMPLIFIED, Phase.LEGACY, "kill-switch",
                 id="kill-switch-beats-everything"),
    pytest.param({"AURUM_MIGRATION_SETTINGS_ENABLED": "false"}, Phase.HYBRID, Phase.LEGACY,
                 "kill-switch", id="generic-kill-switch"),
    pytest.param({"AURUM_USE_SIMPLIFIED_SETTINGS": "1"}, Phase.HYBRID, Phase.HYBRID, "store",
                 id="enabled-1-does-not-pin"),
    pytest.param({"AURUM_SETTINGS_MIGRATION_PHASE": "sideways"}, Phase.SIMPLIFIED, Phase.LEGACY,
                 "invalid", id="bad-value-falls-back-to-legacy"),
]


@pytest.mark.parametrize(("env", "stored", "phase", "source"), PRECEDENCE)
def test_precedence(
    env: dict[str, str], stored: Phase | None, phase: Phase, source: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    if stored is not None:
        FileStore.in_dir(tmp_path).transition("settings", stored, actor="t", reason="t")
    assert resolve("settings", tmp_path)[:2] == (phase, source)


def test_database_uses_the_guides_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_DB_MIGRATION_PHASE", "hybrid")
    assert resolve("database", tmp_path)[:2] == (Phase.HYBRID, "env")
    monkeypatch.setenv("AURUM_USE_SIMPLE_DB_CLIENT", "0")
    assert resolve("database", tmp_path)[:2] == (Phase.LEGACY, "kill-switch")


def test_env_rollout_overrides_the_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FileStore.in_dir(tmp_path).transition(
        "billing", Phase.HYBRID, Rollout(percent=10, compare=50), actor="t", reason="t"
    )
    monkeypatch.setenv("AURUM_MIGRATION_BILLING_PERCENT", "40")
    assert resolve("billing", tmp_path)[2] == Rollout(percent=40, compare=50)


BAD_VALUES = [
    ("settings", "AURUM_USE_SIMPLIFIED_SETTINGS", "maybe", "0 or 1"),
    ("settings", "AURUM_SETTINGS_MIGRATION_PHASE", "halfway", "legacy, hybrid, simplified"),
    ("database", "AURUM_USE_SIMPLE_DB_CLIENT", "yes please", "0 or 1"),
    ("database", "AURUM_DB_MIGRATION_PHASE", "v2", "legacy, hybrid, simplified"),
    ("database", "AURUM_ENABLE_DB_MIGRATION_MONITORING", "loud", "0 or 1"),
    ("billing", "AURUM_MIGRATION_BILLING_PHASE", "new", "legacy, hybrid, simplified"),
    ("billing", "AURUM_MIGRATION_BILLING_PERCENT", "150", "from 0 to 100"),
    ("billing", "AURUM_MIGRATION_BILLING_PERCENT", "ten", "from 0 to 100"),
    ("billing", "AURUM_MIGRATION_BILLING_COMPARE", "-5", "from 0 to 100"),
    ("billing", "AURUM_MIGRATION_BILLING_ENABLED", "2", "0 or 1"),
    ("billing", "AURUM_MIGRATION_BILLING_FALLBACK", "sometimes", "0 or 1"),
    ("billing", "AURUM_MIGRATION_BILLING_MONITORING", "x", "0 or 1"),
]


@pytest.mark.parametrize(("name", "variable", "value", "allowed"), BAD_VALUES,
                         ids=[f"{v}={x}" for _, v, x, _ in BAD_VALUES])
def test_bad_values_name_the_variable_and_the_allowed_values(
    name: str, variable: str, value: str, allowed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        read_flags(name)
    assert caught.value.variable == variable
    assert variable in str(caught.value) and allowed in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AURUM_ENABLE_MIGRATION_MONITORING", "perhaps"), ("AURUM_REFRESH_INTERVAL", "soon")],
)
def test_bad_global_values(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        GlobalFlags.from_env()


def test_phase_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_SETTINGS_MIGRATION_PHASE", " Hybrid ")
    assert read_flags("settings").phase is Phase.HYBRID


def test_variable_names_for_any_migration() -> None:
    assert variables_for("db_client")["phase"] == ("AURUM_MIGRATION_DB_CLIENT_PHASE",)
    assert variables_for("settings")["enabled"] == (
        "AURUM_USE_SIMPLIFIED_SETTINGS", "AURUM_MIGRATION_SETTINGS_ENABLED"
    )


def test_monitoring_switches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = configure(store=FileStore.in_dir(tmp_path), refresh_interval=0)
    assert registry.migration("database").resolved().monitoring
    monkeypatch.setenv("AURUM_ENABLE_DB_MIGRATION_MONITORING", "0")
    assert not registry.migration("database").resolved().monitoring
    assert registry.migration("settings").resolved().monitoring
    monkeypatch.setenv("AURUM_ENABLE_MIGRATION_MONITORING", "0")
    registry = configure(store=FileStore.in_dir(tmp_path), refresh_interval=0)
    assert not registry.migration("settings").resolved().monitoring
    assert not registry.migration("billing").resolved().monitoring


def test_a_bad_global_value_affects_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: AURUM_REFRESH_INTERVAL=0.5s reset every global setting, the state directory too.
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path / "fleet"))
    monkeypatch.setenv("AURUM_STATE_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AURUM_ENABLE_MIGRATION_MONITORING", "0")
    monkeypatch.setenv("AURUM_REFRESH_INTERVAL", "0.5s")
    with caplog.at_level(logging.ERROR, logger="aurum_otel"):
        flags = GlobalFlags.from_env(strict=False)
    assert flags.state_dir == tmp_path / "fleet"
    assert flags.state_url == "redis://127.0.0.1:6379/0"
    assert flags.monitoring is False
    assert flags.refresh_interval == 0.5  # its default
    (record,) = [r for r in caplog.records if "AURUM_REFRESH_INTERVAL" in r.getMessage()]
    assert "'0.5s'" in record.getMessage() and "using its default 0.5" in record.getMessage()


def test_two_bad_global_values_each_take_their_default(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AURUM_REFRESH_INTERVAL", "nan")
    monkeypatch.setenv("AURUM_ENABLE_MIGRATION_MONITORING", "loud")
    flags = GlobalFlags.from_env(strict=False)
    assert (flags.state_dir, flags.monitoring, flags.refresh_interval) == (tmp_path, True, 0.5)
    with pytest.raises(ConfigurationError) as caught:
        GlobalFlags.from_env()
    assert caught.value.variable in ("AURUM_REFRESH_INTERVAL", "AURUM_ENABLE_MIGRATION_MONITORING")
    assert [e.variable for e in GlobalFlags.problems()] == [
        "AURUM_ENABLE_MIGRATION_MONITORING", "AURUM_REFRESH_INTERVAL"]


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "61", "0.5s"])
def test_refresh_interval_must_be_a_finite_number_of_seconds(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURUM_REFRESH_INTERVAL", value)
    with pytest.raises(ConfigurationError, match="AURUM_REFRESH_INTERVAL") as caught:
        GlobalFlags.from_env()
    assert "seconds" in caught.value.allowed


def test_a_flag_reader_for_an_invalid_name_reports_it_on_read() -> None:
    reader = FlagReader("no good")
    with pytest.raises(ConfigurationError, match="did you mean 'no_good'"):
        reader.read()


def test_a_bad_global_value_in_a_running_process_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AURUM_REFRESH_INTERVAL=0.5s reset every global setting, AURUM_STATE_DIR included, so the
    process read and wrote another store."""
    from aurum_otel import testing
    from aurum_otel.registry import get_registry

    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AURUM_REFRESH_INTERVAL", "0.5s")
    testing.reset()
    flags = get_registry().global_flags
    assert flags.state_dir == tmp_path
    assert flags.refresh_interval == 0.5  # its own default, nothing else moved

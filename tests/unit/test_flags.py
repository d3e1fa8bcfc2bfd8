from __future__ import annotations

from pathlib import Path

import pytest

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, configure, read_flags
from aurum_otel.flags import GlobalFlags, variables_for


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
    assert variables_for("db-client")["phase"] == ("AURUM_MIGRATION_DB_CLIENT_PHASE",)
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

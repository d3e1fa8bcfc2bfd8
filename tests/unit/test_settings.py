"""The settings migration: AurumSettings, the legacy loader's quirks, and load_settings() routing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from aurum_otel import ConfigurationError, FileStore, Phase, Rollout, deep_compare, testing
from aurum_otel.redact import describe
from aurum_otel.settings import AurumSettings, load_legacy_settings, load_settings, variable_name

CANARY = "canary-Pa55word-7f3e"

# Environments both loaders read the same way.
SAME = {
    "empty": {},
    "production-full": {
        "AURUM_ENVIRONMENT": "production",
        "AURUM_DEBUG": "1",
        "AURUM_LOG_LEVEL": "WARNING",
        "AURUM_API_HOST": "0.0.0.0",
        "AURUM_API_PORT": "9000",
        "AURUM_DATABASE_URL": "postgresql://app:secret@db/aurum",
        "AURUM_CACHE_TTL_SECONDS": "60",
        "AURUM_REQUEST_TIMEOUT_SECONDS": "12.5",
        "AURUM_TRINO__HOST": "trino.internal",
        "AURUM_TRINO__PORT": "8443",
        "AURUM_TRINO__USER": "svc",
        "AURUM_TRINO__PASSWORD": CANARY,
        "AURUM_TRINO__CATALOG": "hive",
        "AURUM_TRINO__SCHEMA": "curves",
        "AURUM_TRINO__HTTP_SCHEME": "https",
        "AURUM_TRINO__VERIFY": "false",
    },
    "staging-host-only": {"AURUM_ENVIRONMENT": "staging", "AURUM_TRINO__HOST": "10.0.0.7"},
    "case-and-words": {"AURUM_ENVIRONMENT": "Production", "AURUM_DEBUG": "yes",
                       "AURUM_LOG_LEVEL": "debug", "AURUM_TRINO__HTTP_SCHEME": "HTTP"},
    "debug-off": {"AURUM_DEBUG": "off", "AURUM_TRINO__VERIFY": "1"},
}


def differs(path: str, legacy: object, simplified: object) -> str:
    """The value-free difference line deep_compare gives for one field."""
    return f"{path}: {describe(legacy)} != {describe(simplified)}"


# Quirks: legacy and simplified both load, and differ in exactly these fields (the lines name the
# field, the type, the length and a keyed hash, never the value).
QUIRKS = {
    "older-name-wins": (
        {"AURUM_API_TRINO_HOST": "old-trino", "AURUM_TRINO__HOST": "new-trino"},
        (differs("trino.host", "old-trino", "new-trino"),),
    ),
    "older-password-wins": (
        {"AURUM_API_TRINO_PASSWORD": "older-" + CANARY, "AURUM_TRINO__PASSWORD": CANARY,
         "AURUM_TRINO__HTTP_SCHEME": "https"},
        ("trino.password: <redacted> != <redacted>",),
    ),
    "empty-text-is-a-value": (
        {"AURUM_TRINO__HOST": ""},
        (differs("trino.host", "", "localhost"),),
    ),
    "loose-flags": ({"AURUM_DEBUG": "t"}, (differs("debug", False, True),)),
    "scheme-guessed-from-password": (
        {"AURUM_TRINO__PASSWORD": CANARY},
        (differs("trino.http_scheme", "https", "http"),),
    ),
}

# Values the legacy loader takes and AurumSettings rejects: (env, variable, legacy field, value).
TOLERATED = {
    "environment-alias": ({"AURUM_ENVIRONMENT": "dev"}, "AURUM_ENVIRONMENT", "environment",
                          "development"),
    "unknown-environment": ({"AURUM_ENVIRONMENT": "qa"}, "AURUM_ENVIRONMENT", "environment",
                            "development"),
    "any-log-level": ({"AURUM_LOG_LEVEL": "verbose"}, "AURUM_LOG_LEVEL", "log_level", "VERBOSE"),
    "port-zero": ({"AURUM_TRINO__PORT": "0"}, "AURUM_TRINO__PORT", "trino.port", 0),
    "flag-typo": ({"AURUM_DEBUG": "ture"}, "AURUM_DEBUG", "debug", False),
    "negative-ttl": ({"AURUM_CACHE_TTL_SECONDS": "-5"}, "AURUM_CACHE_TTL_SECONDS",
                     "cache_ttl_seconds", -5),
    "missing-ca": ({"AURUM_TRINO__VERIFY": "/nonexistent/ca.pem"}, "AURUM_TRINO__VERIFY",
                   "trino.verify", "/nonexistent/ca.pem"),
}


def setenv(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def field(settings: AurumSettings, path: str) -> object:
    value: object = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("env", SAME.values(), ids=SAME.keys())
def test_both_loaders_agree_on_ordinary_environments(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    setenv(monkeypatch, env)
    legacy, simplified = load_legacy_settings(), AurumSettings.from_env()
    assert type(legacy) is type(simplified) is AurumSettings
    result = deep_compare(legacy, simplified)
    assert result.equal, result.differences
    assert legacy == simplified


def test_full_environment_is_read_into_typed_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, SAME["production-full"])
    settings = AurumSettings.from_env()
    assert settings.environment == "production" and settings.debug is True
    assert settings.api_port == 9000 and settings.request_timeout_seconds == 12.5
    assert settings.trino.host == "trino.internal" and settings.trino.port == 8443
    assert settings.trino.schema_name == "curves" and settings.trino.verify is False
    assert settings.trino.password is not None
    assert settings.trino.password.get_secret_value() == CANARY
    assert settings.trino_configured
    assert CANARY not in repr(settings) and "secret" not in repr(settings)


@pytest.mark.parametrize(("env", "differences"), QUIRKS.values(), ids=QUIRKS.keys())
def test_each_documented_quirk_is_a_field_level_difference(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], differences: tuple[str, ...]
) -> None:
    setenv(monkeypatch, env)
    result = deep_compare(load_legacy_settings(), AurumSettings.from_env())
    assert not result.equal
    assert result.differences == differences
    assert all(CANARY not in line for line in result.differences)


@pytest.mark.parametrize(
    ("env", "variable", "path", "legacy_value"), TOLERATED.values(), ids=TOLERATED.keys()
)
def test_legacy_tolerates_what_aurum_settings_rejects_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, path: str,
    legacy_value: object,
) -> None:
    setenv(monkeypatch, env)
    assert field(load_legacy_settings(), path) == legacy_value
    with pytest.raises(ConfigurationError) as caught:
        AurumSettings.from_env()
    error = caught.value
    assert error.variable == variable
    assert str(error).startswith(f"{variable}=")
    assert error.allowed  # says what would work
    # No pydantic traceback: the ValidationError is neither the cause nor shown as context.
    assert error.__cause__ is None and error.__suppress_context__


def test_legacy_rejects_fractional_ttl_that_aurum_settings_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AURUM_CACHE_TTL_SECONDS", "1.5")
    assert AurumSettings.from_env().cache_ttl_seconds == 1.5
    with pytest.raises(ValueError, match="invalid literal for int"):
        load_legacy_settings()


def test_configuration_error_names_allowed_values() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AURUM_TRINO__HTTP_SCHEME", "ftp")
        with pytest.raises(ConfigurationError) as caught:
            AurumSettings.from_env()
    assert caught.value.variable == "AURUM_TRINO__HTTP_SCHEME"
    assert caught.value.value == "ftp"
    assert caught.value.allowed == "http, https"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AURUM_TRINO", '{"password": "' + CANARY + '", "port": "x"}'),
     ("AURUM_TRINO", '{"password": "' + CANARY + '", broken')],
    ids=["json-invalid-field", "json-unparsable"],
)
def test_configuration_errors_never_repeat_secrets(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        AurumSettings.from_env()
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value.value)
    assert caught.value.variable.startswith("AURUM_TRINO")


def test_verify_takes_an_existing_ca_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("AURUM_TRINO__VERIFY", str(bundle))
    assert AurumSettings.from_env().trino.verify == str(bundle)
    assert load_legacy_settings().trino.verify == str(bundle)


def test_settings_are_frozen() -> None:
    settings = AurumSettings.from_env()
    with pytest.raises(ValidationError):
        settings.debug = True
    with pytest.raises(ValidationError):
        settings.trino.host = "elsewhere"


def test_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_TRINO__PORT", "")
    monkeypatch.setenv("AURUM_TRINO__HOST", "")
    settings = AurumSettings.from_env()
    assert settings.trino.port == 8080 and settings.trino.host == "localhost"
    assert not settings.trino_configured


def test_variable_names_follow_prefix_and_nesting() -> None:
    assert variable_name(("trino", "http_scheme")) == "AURUM_TRINO__HTTP_SCHEME"
    assert variable_name(("api_port",)) == "AURUM_API_PORT"


def set_phase(state_dir: Path, phase: Phase, rollout: Rollout | None = None) -> None:
    FileStore.in_dir(state_dir).transition("settings", phase, rollout, actor="test", reason="test")


def test_load_settings_keeps_its_name_and_routes_to_legacy_by_default(tmp_path: Path) -> None:
    assert load_settings.__name__ == "load_settings"
    assert load_settings.migration_name == "settings"
    with testing.capture(state_dir=tmp_path) as telemetry:
        settings = load_settings()
    assert isinstance(settings, AurumSettings)
    (span,) = telemetry.spans("migrate settings")
    assert span.attributes is not None
    assert span.attributes["aurum.migration.implementation"] == "legacy"


def test_load_settings_simplified_phase_raises_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AURUM_SETTINGS_MIGRATION_PHASE", "simplified")
    monkeypatch.setenv("AURUM_ENVIRONMENT", "dev")
    with testing.capture(state_dir=tmp_path) as telemetry, pytest.raises(ConfigurationError):
        load_settings()
    (span,) = telemetry.spans("migrate settings")
    assert span.attributes is not None
    assert span.attributes["aurum.migration.implementation"] == "simplified"
    assert span.attributes["error.type"] == "aurum_otel.errors.ConfigurationError"


def test_hybrid_shadow_reports_the_password_quirk_redacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setenv(monkeypatch, QUIRKS["older-password-wins"][0])
    caplog.set_level(logging.INFO)
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        settings = load_settings()
        telemetry.wait_for_shadows()
        assert settings.trino.password is not None
        assert settings.trino.password.get_secret_value() == "older-" + CANARY  # legacy served
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
        (shadow,) = telemetry.spans("shadow settings")
        assert shadow.attributes is not None
        assert shadow.attributes["aurum.migration.differences"] == (
            "trino.password: <redacted> != <redacted>"
        )
        exported = [str(dict(s.attributes or {})) + str(s.events) for s in telemetry.spans()]
        points = [str(attrs) for attrs, _ in telemetry.points("aurum.migration.calls")]
    mismatch = [r.getMessage() for r in caplog.records if r.name == "aurum_otel.mismatch"]
    assert mismatch and "trino.password: <redacted> != <redacted>" in mismatch[0]
    assert all(CANARY not in text for text in exported + points + mismatch)
    assert all(CANARY not in r.getMessage() for r in caplog.records)


def test_hybrid_shadow_matches_on_an_ordinary_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setenv(monkeypatch, SAME["production-full"])
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=100, compare=100))
        load_settings()
        telemetry.wait_for_shadows()
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 0

"""AURUM_STATE_URL: each scheme names its store; a bad URL never breaks a call, the CLI refuses it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aurum_otel import ConfigurationError, FileStore, testing
from aurum_otel.registry import get_registry
from aurum_otel.stores.url import store_from_url
from tests.unit.stores.routing import which as _which

CONFIG_ERROR = "aurum.migration.config_error"
PHASE_SOURCE = "aurum.migration.phase_source"


@pytest.mark.parametrize("url", [
    "bogus://somewhere",
    "redis://127.0.0.1:notaport/0",
    "redis://127.0.0.1:99999/0",
], ids=["unknown-scheme", "non-numeric-port", "port-out-of-range"])
@pytest.mark.parametrize("pin", [None, "simplified"], ids=["no-pin", "env-pin"])
def test_a_bad_state_url_never_breaks_a_call(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture,
                                              url: str, pin: str | None) -> None:
    monkeypatch.setenv("AURUM_STATE_URL", url)
    if pin:
        monkeypatch.setenv("AURUM_MIGRATION_BADURL_PHASE", pin)
    which = _which("badurl")
    with caplog.at_level(logging.ERROR, logger="aurum_otel"), testing.capture() as telemetry:
        results = [which() for _ in range(5)]
    assert results == [pin or "legacy"] * 5
    spans = telemetry.spans("migrate badurl")
    assert len(spans) == 5
    assert {s.attributes[CONFIG_ERROR] for s in spans} == {"AURUM_STATE_URL"}  # type: ignore[index]
    if not pin:
        assert {s.attributes[PHASE_SOURCE] for s in spans} == {"invalid"}  # type: ignore[index]
    logged = [r for r in caplog.records if "AURUM_STATE_URL" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]


def test_a_bad_state_url_under_the_kill_switch_serves_legacy(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("AURUM_STATE_URL", "bogus://x")
    monkeypatch.setenv("AURUM_MIGRATION_KILLED_PHASE", "simplified")
    monkeypatch.setenv("AURUM_MIGRATION_KILLED_ENABLED", "0")
    which = _which("killed")
    with testing.capture() as telemetry:
        assert which() == "legacy"
    assert telemetry.spans()[0].attributes[PHASE_SOURCE] == "kill-switch"  # type: ignore[index]


def test_the_cli_side_still_rejects_a_bad_state_url(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="AURUM_STATE_URL"):
        store_from_url("bogus://somewhere", tmp_path)
    monkeypatch.setenv("AURUM_STATE_URL", "bogus://somewhere")
    testing.reset()
    with pytest.raises(ConfigurationError, match="AURUM_STATE_URL"):
        get_registry().store  # noqa: B018 - what the CLI reads


@pytest.mark.parametrize(("url", "where"), [
    (None, "state/migration_state.json"),
    ("", "state/migration_state.json"),
    ("file://{tmp}/elsewhere", "elsewhere/migration_state.json"),
    ("file://{tmp}/elsewhere/phases.json", "elsewhere/phases.json"),
], ids=["unset", "empty", "file-dir", "file-json"])
def test_no_url_or_a_file_url_names_a_file_store(tmp_path: Path, url: str | None,
                                                 where: str) -> None:
    store = store_from_url(url.format(tmp=tmp_path) if url else url, tmp_path / "state")
    assert isinstance(store, FileStore) and store.path == tmp_path / where


def test_a_redis_url_names_a_redis_store_that_hides_the_password(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from aurum_otel.stores.redis import RedisStore

    store = store_from_url("redis://:s3cret@127.0.0.1:1/3?prefix=fleet", tmp_path)
    try:
        assert isinstance(store, RedisStore)
        assert (store.location, store.prefix) == ("redis://:***@127.0.0.1:1/3?prefix=fleet",
                                                  "fleet")
    finally:
        store.close()


def test_an_openfeature_url_names_the_source_with_overrides_beside_the_state(tmp_path: Path) -> None:
    pytest.importorskip("openfeature")
    from aurum_otel.stores.openfeature import OpenFeaturePhaseSource

    source = store_from_url("openfeature:", tmp_path)
    assert isinstance(source, OpenFeaturePhaseSource)
    assert isinstance(source.override_store, FileStore)
    assert source.override_store.path == tmp_path / "openfeature_overrides.json"

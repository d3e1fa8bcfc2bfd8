"""OpenFeaturePhaseSource on the real flagd provider, in-process, reading a temporary flag file."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openfeature.contrib.provider.flagd")

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ProviderNotReadyError
from openfeature.provider.no_op_provider import NoOpProvider

from aurum_otel import (
    ConfigurationError,
    FileStore,
    Phase,
    PhaseStore,
    Rollout,
    StateError,
    TransitionConflictError,
    migrated,
    testing,
)
from aurum_otel import registry as registry_module
from aurum_otel.stores.openfeature import OpenFeaturePhaseSource
from aurum_otel.stores.openfeature_overrides import (
    OVERRIDE_MARK,
    OVERRIDES_FILE,
    ProviderOverrideWarning,
)
from aurum_otel.stores.url import store_from_url

PHASE_VARIANTS = {"legacy": "legacy", "hybrid": "hybrid", "simplified": "simplified"}


class Flags:
    """A flagd flag file that tests rewrite (atomically, as a deployment tool would)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.flags: dict[str, Any] = {}

    def set(self, key: str, value: Any, variants: dict[str, Any] | None = None) -> None:
        if variants is None:
            variants = {"on": value}
            default = "on"
        else:
            default = next(name for name, v in variants.items() if v == value)
        self.flags[key] = {"state": "ENABLED", "variants": variants, "defaultVariant": default}

    def phase(self, name: str, phase: str) -> None:
        variants = dict(PHASE_VARIANTS)
        variants.setdefault(phase, phase)
        self.set(f"aurum.migration.{name}.phase", phase, variants)

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"flags": self.flags}))
        os.replace(temporary, self.path)


@pytest.fixture
def flags(tmp_path: Path) -> Flags:
    file = Flags(tmp_path / "flags.json")
    file.phase("settings", "hybrid")
    file.set("aurum.migration.settings.percent", 25)
    file.set("aurum.migration.settings.compare", 5)
    file.set("aurum.migration.settings.fallback", True)
    file.phase("database", "simplified")
    file.write()
    return file


@pytest.fixture
def client(flags: Flags) -> Iterator[OpenFeatureClient]:
    domain = f"aurum-test-{uuid.uuid4().hex[:8]}"
    provider = FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS,
        offline_flag_source_path=str(flags.path),
        deadline_ms=100,  # the in-process file watcher re-reads the file every deadline_ms
    )
    api.set_provider_and_wait(provider, domain)
    yield api.get_client(domain)
    api.clear_providers()
    stop_watcher(provider)


def stop_watcher(provider: FlagdProvider) -> None:
    # The in-process file watcher is a daemon thread that notices its shutdown only after its next
    # sleep: wait for it, so it never logs (and formats tracebacks) while pytest rewrites imports.
    thread = getattr(getattr(provider.resolver, "connector", None), "thread", None)
    if isinstance(thread, threading.Thread):
        thread.join(timeout=2.0)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def test_is_a_phase_store(client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client)
    assert isinstance(source, PhaseStore)
    assert source.location.startswith("openfeature://aurum-test-")
    assert "FlagdProvider" in source.location


def test_phase_and_rollout_come_from_the_flags(client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client, names=["settings"])
    snapshot = source.snapshot()
    assert snapshot.problem is None
    settings = snapshot.get("settings")
    assert settings is not None
    assert settings.phase is Phase.HYBRID
    assert settings.rollout == Rollout(percent=25, compare=5, fallback=True)
    database = snapshot.get("database")
    assert database is not None and database.phase is Phase.SIMPLIFIED
    assert database.rollout == Rollout()  # no rollout flags: the defaults
    assert snapshot.get("nothing") is None  # no phase flag: no record (legacy by default)
    assert sorted(snapshot.records) == ["database", "settings"]


def test_custom_flag_keys(flags: Flags, client: OpenFeatureClient) -> None:
    flags.set("payments-phase", "simplified", PHASE_VARIANTS)
    flags.write()
    source = OpenFeaturePhaseSource(client, "{name}-phase")
    wait_for(lambda: source.snapshot().get("payments") is not None)
    record = source.snapshot().get("payments")
    assert record is not None and record.phase is Phase.SIMPLIFIED
    assert source.percent_key_template == "{name}-phase.percent"


def test_a_flag_change_reaches_the_registry_within_a_second(
    flags: Flags, client: OpenFeatureClient
) -> None:
    source = OpenFeaturePhaseSource(client)
    changed: list[str] = []
    source.add_listener(changed.append)

    @migrated("database")
    def query() -> str:
        return "legacy"

    @query.simplified
    def _query_v2() -> str:
        return "simplified"

    with testing.capture(store=source, refresh_interval=0.0):
        assert query() == "simplified"
        flags.phase("database", "legacy")
        flags.write()
        latency = wait_for(lambda: query() == "legacy")
    print(f"flag file change seen by @migrated after {latency * 1000:.0f} ms")
    assert latency < 1.0
    wait_for(lambda: "database" in changed)


def test_an_unknown_phase_value_runs_legacy_and_is_logged_once(
    flags: Flags, client: OpenFeatureClient, caplog: pytest.LogCaptureFixture
) -> None:
    flags.phase("settings", "turbo")
    flags.write()
    source = OpenFeaturePhaseSource(client)
    wait_for(lambda: getattr(source.snapshot().get("settings"), "phase", None) is Phase.LEGACY)
    with caplog.at_level(logging.ERROR, logger="aurum_otel.store"):
        for _ in range(3):
            source.snapshot().get("settings")
    assert sum("turbo" in r.getMessage() for r in caplog.records) <= 1


def test_a_bad_rollout_value_keeps_the_default(flags: Flags, client: OpenFeatureClient) -> None:
    flags.set("aurum.migration.settings.percent", 250)
    flags.write()
    source = OpenFeaturePhaseSource(client)
    wait_for(lambda: getattr(source.snapshot().get("settings"), "rollout", None)
             == Rollout(percent=0, compare=5, fallback=True))


def test_rollback_applies_locally_and_warns(flags: Flags, client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client)
    with pytest.warns(ProviderOverrideWarning, match="(?i)change the flag at your provider"):
        change = source.transition("database", Phase.LEGACY, actor="op", reason="errors")
    assert (change.from_phase, change.to_phase) == (Phase.SIMPLIFIED, Phase.LEGACY)
    record = source.snapshot().get("database")
    assert record is not None and record.phase is Phase.LEGACY
    assert [t.reason for t in record.history] == ["errors"]
    assert "database" in source.overrides()
    # Once the flag itself changes, the flag is followed again.
    flags.phase("database", "hybrid")
    flags.write()
    wait_for(lambda: getattr(source.snapshot().get("database"), "phase", None) is Phase.HYBRID)
    assert source.overrides() == {}


def test_hybrid_percent_down_is_a_rollback(client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client)
    with pytest.warns(ProviderOverrideWarning):
        source.transition("settings", Phase.HYBRID, Rollout(percent=5, compare=5),
                          actor="op", reason="slower")
    record = source.snapshot().get("settings")
    assert record is not None and record.rollout.percent == 5


@pytest.mark.parametrize(
    ("name", "phase", "rollout"),
    [("settings", Phase.SIMPLIFIED, None), ("settings", Phase.HYBRID, Rollout(percent=50)),
     ("nothing", Phase.HYBRID, None)],
    ids=["advance", "more-percent", "new-migration"],
)
def test_anything_else_must_be_done_at_the_provider(
    client: OpenFeatureClient, name: str, phase: Phase, rollout: Rollout | None
) -> None:
    source = OpenFeaturePhaseSource(client)
    with pytest.raises(StateError, match=r"change that flag .* at your feature-flag provider"):
        source.transition(name, phase, rollout, actor="op", reason="go")
    assert source.overrides() == {}


def test_expected_phase_is_compare_and_set(client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client)
    with pytest.raises(TransitionConflictError):
        source.transition("database", Phase.LEGACY, actor="c", reason="r", expected=Phase.HYBRID)
    with pytest.warns(ProviderOverrideWarning):
        source.transition("database", Phase.LEGACY, actor="c", reason="r",
                          expected=Phase.SIMPLIFIED)


def test_override_is_kept_in_the_local_store_across_restarts(
    tmp_path: Path, flags: Flags, client: OpenFeatureClient
) -> None:
    local = FileStore(tmp_path / "overrides.json")
    local.transition("settings", Phase.SIMPLIFIED, actor="old", reason="unrelated record")
    source = OpenFeaturePhaseSource(client, override_store=local)
    assert source.overrides() == {}  # records not written as overrides are ignored
    with pytest.warns(ProviderOverrideWarning, match=str(tmp_path / "overrides.json")):
        source.transition("database", Phase.LEGACY, actor="op", reason="errors")
    written = local.snapshot().get("database")
    assert written is not None and written.history[-1].reason == OVERRIDE_MARK + "errors"

    restarted = OpenFeaturePhaseSource(client, override_store=FileStore(local.path))
    record = restarted.snapshot().get("database")
    assert record is not None and record.phase is Phase.LEGACY

    # The flag changes: the override is dropped, here and in the file.
    flags.phase("database", "hybrid")
    flags.write()
    wait_for(lambda: getattr(restarted.snapshot().get("database"), "phase", None) is Phase.HYBRID)
    again = OpenFeaturePhaseSource(client, override_store=FileStore(local.path))
    assert again.overrides() == {}


def test_clear_override(client: OpenFeatureClient) -> None:
    source = OpenFeaturePhaseSource(client)
    with pytest.warns(ProviderOverrideWarning):
        source.transition("database", Phase.LEGACY, actor="op", reason="errors")
    assert source.clear_override("database") is True
    assert source.clear_override("database") is False
    record = source.snapshot().get("database")
    assert record is not None and record.phase is Phase.SIMPLIFIED


class UnreachableProvider(NoOpProvider):
    """A provider whose initialization fails (its status becomes ERROR), like one that cannot
    reach its flag service."""

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        raise ProviderNotReadyError("flag service unreachable")


def test_a_provider_that_is_not_ready_is_a_problem() -> None:
    domain = f"aurum-test-{uuid.uuid4().hex[:8]}"
    api.set_provider(UnreachableProvider(), domain)
    try:
        source = OpenFeaturePhaseSource(api.get_client(domain))
        snapshot = source.snapshot()
        assert isinstance(snapshot.problem, StateError)
        assert snapshot.get("settings") is None

        @migrated("settings")
        def load() -> str:
            return "legacy"

        @load.simplified
        def _load_v2() -> str:
            return "simplified"

        with testing.capture(store=source) as telemetry:
            assert load() == "legacy"
        assert telemetry.spans()[0].attributes is not None
    finally:
        api.clear_providers()


def test_no_provider_at_all_means_no_records() -> None:
    # The default client with no provider set: OpenFeature's no-op provider answers defaults.
    source = OpenFeaturePhaseSource()
    snapshot = source.snapshot()
    assert snapshot.problem is None
    assert snapshot.get("settings") is None


def test_from_url(tmp_path: Path, client: OpenFeatureClient) -> None:
    assert client.domain is not None
    source = OpenFeaturePhaseSource.from_url(
        f"openfeature://{client.domain}?flag_key_template=aurum.migration.{{name}}.phase",
        tmp_path)
    record = source.snapshot().get("database")
    assert record is not None and record.phase is Phase.SIMPLIFIED
    assert isinstance(source.override_store, FileStore)
    assert source.override_store.path == tmp_path / OVERRIDES_FILE
    assert OpenFeaturePhaseSource.from_url("openfeature:").override_store is None
    for bad in ("flagd://x", "openfeature://x?percent=3", "openfeature://x/path"):
        with pytest.raises(ConfigurationError, match="AURUM_STATE_URL"):
            OpenFeaturePhaseSource.from_url(bad)


def test_aurum_state_url_selects_the_openfeature_source(
    tmp_path: Path, client: OpenFeatureClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"openfeature://{client.domain}"
    monkeypatch.setenv("AURUM_STATE_URL", url)
    assert isinstance(store_from_url(url, tmp_path), OpenFeaturePhaseSource)
    testing.reset()

    @migrated("database")
    def query() -> str:
        return "legacy"

    @query.simplified
    def _query_v2() -> str:
        return "simplified"

    assert isinstance(registry_module.get_registry().store, OpenFeaturePhaseSource)
    assert query() == "simplified"

"""The OpenFeature provider aurum-otel ships: a migration's phase flags served from its store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.openfeature_provider import AurumStoreProvider
from aurum_otel.stores.openfeature import OpenFeaturePhaseSource


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileStore]:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(percent=10, compare=25, fallback=True),
                     actor="t", reason="t")
    api.set_provider(AurumStoreProvider(store), domain="aurum-test")
    yield store
    api.clear_providers()


def test_the_phase_flags_are_served_from_the_store(store: FileStore) -> None:
    client = api.get_client("aurum-test")
    details = client.get_string_details("aurum.migration.svc.phase", "legacy")
    assert (details.value, details.variant, details.reason) == ("hybrid", "hybrid", Reason.STATIC)
    assert details.flag_metadata["percent"] == 10
    assert client.get_float_value("aurum.migration.svc.percent", 0.0) == 10
    assert client.get_float_value("aurum.migration.svc.compare", 0.0) == 25
    assert client.get_boolean_value("aurum.migration.svc.fallback", False) is True
    store.transition("svc", Phase.LEGACY, actor="t", reason="rollback")  # no restart needed
    assert client.get_string_value("aurum.migration.svc.phase", "hybrid") == "legacy"


def test_unknown_flags_and_wrong_types_get_the_default_with_an_error_code(store: FileStore
                                                                          ) -> None:
    client = api.get_client("aurum-test")
    unknown = client.get_string_details("aurum.migration.nosuch.phase", "legacy")
    assert (unknown.value, unknown.reason, unknown.error_code) == ("legacy", Reason.DEFAULT, None)
    other = client.get_string_details("checkout.new-ui", "off")
    assert (other.value, other.error_code) == ("off", ErrorCode.FLAG_NOT_FOUND)
    wrong = client.get_boolean_details("aurum.migration.svc.phase", False)
    assert (wrong.value, wrong.error_code) == (False, ErrorCode.TYPE_MISMATCH)


def test_an_unreadable_store_answers_the_default_with_an_error(tmp_path: Path) -> None:
    (tmp_path / "migration_state.json").write_text("{oops")
    api.set_provider(AurumStoreProvider(FileStore.in_dir(tmp_path)), domain="aurum-broken")
    try:
        details = api.get_client("aurum-broken").get_string_details("aurum.migration.svc.phase",
                                                                    "legacy")
    finally:
        api.clear_providers()
    assert (details.value, details.reason, details.error_code) == ("legacy", Reason.ERROR,
                                                                   ErrorCode.GENERAL)
    assert "not valid JSON" in (details.error_message or "")


def test_a_process_reading_phases_through_openfeature_follows_the_store(store: FileStore) -> None:
    """The round trip: aurum-otel's OpenFeature phase source, fed by this provider."""
    api.set_provider(AurumStoreProvider(store))
    try:
        with testing.capture(store=OpenFeaturePhaseSource()):
            @migrated("svc")
            def load() -> str:
                return "legacy"

            @load.simplified
            def _load_v2() -> str:
                return "simplified"

            store.transition("svc", Phase.SIMPLIFIED, actor="t", reason="t")
            assert load() == "simplified"
    finally:
        api.clear_providers()


def test_the_provider_refuses_to_serve_from_an_openfeature_source() -> None:
    with pytest.raises(ValueError, match="circle"):
        AurumStoreProvider(OpenFeaturePhaseSource())

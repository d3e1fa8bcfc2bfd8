"""``feature_flag.context.id`` (issue 16.6): a routed call's hashed routing key, never the key.

The id is a keyed hash (``AURUM_CONTEXT_ID_SECRET``, else a random key per process) of the key's
digest, so a span carries nothing a dictionary of likely keys can reverse; ``aurum_otel.context_id``
finds a key's spans.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aurum_otel
from aurum_otel import FileStore, Phase, Rollout, migrated, routing_key, testing
from aurum_otel.flags import GlobalFlags
from aurum_otel.route import CONTEXT_IDS_KEPT, Options, Router
from aurum_otel.router import context_id, key_digest

NAME = "orders"
CONTEXT = "feature_flag.context.id"


def _events(telemetry: testing.CapturedTelemetry) -> list[dict[str, Any]]:
    return [dict(event.attributes or {}) for span in telemetry.spans()
            for event in span.events if event.name == "feature_flag.evaluation"]


def _run(tmp_path: Path, keys: list[Any], *, phase: Phase = Phase.HYBRID, compare: float = 0,
         keyed: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    store = FileStore.in_dir(tmp_path)
    store.transition(NAME, phase, Rollout(percent=50, compare=compare) if phase is Phase.HYBRID
                     else None, actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated(NAME, key=(lambda user: user) if keyed else None)
        def load(user: Any) -> str:
            return "legacy"

        @load.simplified
        def _load(user: Any) -> str:
            return "legacy"

        for key in keys:
            load(key)
        telemetry.wait_for_shadows()
        ids = [aurum_otel.context_id(NAME, key) for key in keys]
        return _events(telemetry), ids


@pytest.mark.parametrize("compare", [0, 100], ids=["no-shadow", "shadowed"])
def test_a_keyed_hybrid_call_carries_the_hashed_key(tmp_path: Path, compare: float) -> None:
    keys = ["alice@example.com", "bob@example.com", "alice@example.com"]
    events, ids = _run(tmp_path, keys, compare=compare)
    assert sorted(e.get(CONTEXT) for e in events) == sorted(ids)  # what context_id() says
    assert ids[0] == ids[2] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert {e["feature_flag.result.reason"] for e in events} == {"split"}


def test_no_context_without_a_key_or_outside_the_split(tmp_path: Path) -> None:
    events, _ = _run(tmp_path / "a", [1, 2], keyed=False)
    assert events and all(CONTEXT not in e for e in events)
    events, _ = _run(tmp_path / "b", ["alice"], phase=Phase.LEGACY)
    assert events and all(CONTEXT not in e for e in events)  # static phase: no key evaluated


def test_the_secret_makes_ids_comparable_across_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_CONTEXT_ID_SECRET", "fleet-wide secret")
    first, _ = _run(tmp_path / "a", ["alice"])
    second, _ = _run(tmp_path / "b", ["alice"])  # a new registry: as another process
    assert first[0][CONTEXT] == second[0][CONTEXT]
    monkeypatch.delenv("AURUM_CONTEXT_ID_SECRET")
    third, _ = _run(tmp_path / "c", ["alice"])  # no secret: a random one per process
    assert third[0][CONTEXT] != first[0][CONTEXT]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(min_size=1, max_size=40).filter(str.isprintable).map(lambda k: f"Key:{k}"))
def test_a_routing_key_never_reaches_a_span(tmp_path_factory: pytest.TempPathFactory,
                                            key: str) -> None:
    store = FileStore.in_dir(tmp_path_factory.mktemp("s"))
    store.transition(NAME, Phase.HYBRID, Rollout(percent=50, compare=100), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated(NAME)
        def load(i: int) -> int:
            return i

        @load.simplified
        def _load(i: int) -> int:
            return i

        with routing_key(key):
            load(1)
        telemetry.wait_for_shadows()
        values = list(_values(telemetry))
    assert values and not any(key in value for value in values)


def _values(telemetry: testing.CapturedTelemetry) -> Iterator[str]:
    for span in telemetry.spans():
        yield span.name
        yield from (str(v) for v in (span.attributes or {}).values())
        for event in span.events:
            yield from (str(v) for v in (event.attributes or {}).values())


class _Unprintable:
    def __format__(self, spec: str) -> str:
        raise RuntimeError("no text for this key")


def test_a_key_that_cannot_be_spelt_routes_per_call_and_never_fails_the_call(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: the key's RuntimeError reached the caller from the router's hash."""
    with caplog.at_level(logging.WARNING, logger="aurum_otel"):
        events, _ = _run(tmp_path, [1, 2], keyed=False)  # warm the wiring
        store = FileStore.in_dir(tmp_path / "x")
        store.transition(NAME, Phase.HYBRID, Rollout(percent=50), actor="t", reason="t")
        with testing.CapturedTelemetry(store=store) as telemetry:
            @migrated(NAME, key=lambda i: _Unprintable())
            def load(i: int) -> int:
                return i

            @load.simplified
            def _load(i: int) -> int:
                return i

            assert [load(i) for i in range(20)] == list(range(20))
            telemetry.wait_for_shadows()
            events = _events(telemetry)
    assert len(events) == 20 and all(CONTEXT not in e for e in events)
    assert caplog.text.count("cannot be formatted as text; routing per call") == 1


def test_the_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_CONTEXT_ID_SECRET", "hunter2-fleet")
    flags = GlobalFlags.from_env()
    assert flags.context_id_secret is not None
    shown = [repr(flags), str(flags), str(flags.model_dump()), flags.model_dump_json()]
    assert not any("hunter2" in text for text in shown)


def test_the_ids_kept_for_sticky_keys_are_bounded_and_right() -> None:
    router = Router("orders", Options(), is_async=False)
    router.bind()
    digests = [key_digest("orders", f"user-{i}") for i in range(CONTEXT_IDS_KEPT + 10)]
    ids = [router.context_id(d) for d in digests]
    assert ids == [context_id(d, router.context_secret) for d in digests]
    assert len(router._context_ids) <= CONTEXT_IDS_KEPT
    assert router.context_id(digests[-1]) == ids[-1]

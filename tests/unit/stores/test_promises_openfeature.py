"""Tests that kill the surviving mutants of the OpenFeature source's promises
(scripts/mutation.sh openfeature).

Promise held here: a local rollback override holds while the flags stay as they were when it was
made, and ends as soon as *any* of the migration's flags changes (phase, percent, compare or
fallback), not only the phase. The provider is the SDK's in-memory provider, whose flags read a
dict the test changes (no file watcher, no waiting).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openfeature")

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import FlagResolutionDetails
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from aurum_otel import Phase, Rollout
from aurum_otel.stores.openfeature import OpenFeaturePhaseSource
from aurum_otel.stores.openfeature_overrides import ProviderOverrideWarning

TEMPLATE = "promises.{name}.phase"  # the other three keys are derived: promises.{name}.percent ...
KEYS = {field: f"promises.orders.{field}" for field in ("phase", "percent", "compare", "fallback")}


@pytest.fixture
def values() -> dict[str, Any]:
    return {"phase": "hybrid", "percent": 40.0, "compare": 20.0, "fallback": True}


@pytest.fixture
def client(values: dict[str, Any]) -> Iterator[OpenFeatureClient]:
    def live(field: str) -> InMemoryFlag[Any]:
        def evaluate(flag: InMemoryFlag[Any], context: EvaluationContext) -> FlagResolutionDetails[Any]:
            return FlagResolutionDetails(value=values[field])

        return InMemoryFlag("on", {"on": values[field]}, context_evaluator=evaluate)

    domain = f"aurum-promises-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(InMemoryProvider({KEYS[f]: live(f) for f in KEYS}), domain)
    yield api.get_client(domain)
    api.clear_providers()


def _rolled_back(client: OpenFeatureClient) -> OpenFeaturePhaseSource:
    source = OpenFeaturePhaseSource(client, flag_key_template=TEMPLATE)
    with pytest.warns(ProviderOverrideWarning):
        source.transition("orders", Phase.HYBRID, Rollout(percent=10, compare=20, fallback=True),
                          actor="controller", reason="error rate")
    record = source.snapshot().get("orders")
    assert record is not None and record.rollout.percent == 10  # the override is in force
    return source


def test_the_override_holds_while_the_flags_are_unchanged(client: OpenFeatureClient) -> None:
    source = _rolled_back(client)
    for _ in range(3):
        record = source.snapshot().get("orders")
        assert record is not None and record.rollout.percent == 10
    assert set(source.overrides()) == {"orders"}


@pytest.mark.parametrize(
    ("field", "new", "expected"),
    [
        pytest.param("phase", "simplified", (Phase.SIMPLIFIED, 40.0, 20.0, True), id="phase"),
        pytest.param("percent", 30.0, (Phase.HYBRID, 30.0, 20.0, True), id="percent"),
        pytest.param("compare", 50.0, (Phase.HYBRID, 40.0, 50.0, True), id="compare"),
        pytest.param("fallback", False, (Phase.HYBRID, 40.0, 20.0, False), id="fallback"),
    ],
)
def test_the_override_ends_when_any_flag_of_the_migration_changes(
    client: OpenFeatureClient, values: dict[str, Any], field: str, new: Any,
    expected: tuple[Phase, float, float, bool],
) -> None:
    source = _rolled_back(client)
    values[field] = new
    record = source.snapshot().get("orders")
    assert record is not None
    assert (record.phase, record.rollout.percent, record.rollout.compare,
            record.rollout.fallback) == expected
    assert source.overrides() == {}
    # and it stays ended when the flag goes back
    values[field] = {"phase": "hybrid", "percent": 40.0, "compare": 20.0, "fallback": True}[field]
    again = source.snapshot().get("orders")
    assert again is not None and again.rollout.percent == 40.0

"""``feature_flag.evaluation`` events carry ``feature_flag.result.reason`` (issue 16.6), per the
OTel feature-flag conventions: ``static`` (one phase for every call), ``split`` (hybrid: routed by
percent), ``default`` (nothing configured), ``error`` (an invalid value fell back to legacy),
``disabled`` (the kill switch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.telemetry import feature_flag_event, semconv


@pytest.mark.parametrize(("phase", "source", "reason"), [
    (Phase.LEGACY, "store", "static"),
    (Phase.SIMPLIFIED, "env", "static"),
    (Phase.HYBRID, "store", "split"),
    (Phase.LEGACY, "default", "default"),
    (Phase.LEGACY, "invalid", "error"),
    (Phase.LEGACY, "kill-switch", "disabled"),
    (Phase.HYBRID, "env", "split"),
    (Phase.SIMPLIFIED, "store", "static"),
], ids=lambda v: str(v))
def test_the_reason_per_phase_and_source(phase: Phase, source: str | None, reason: str) -> None:
    event = feature_flag_event("orders", phase, source)
    assert event[semconv.ATTR_FF_REASON] == reason
    assert event[semconv.ATTR_FF_VARIANT] == phase.value


def test_without_a_source_the_event_is_as_before() -> None:
    assert semconv.ATTR_FF_REASON not in feature_flag_event("orders", Phase.HYBRID)


@pytest.mark.parametrize(("phase", "reason"), [(Phase.HYBRID, "split"),
                                               (Phase.SIMPLIFIED, "static")])
def test_the_event_on_a_routed_call_carries_the_reason(tmp_path: Path, phase: Phase,
                                                       reason: str) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", phase, Rollout(percent=50, compare=0), actor="t", reason="t")
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated("orders")
        def load() -> int:
            return 1

        @load.simplified
        def _load_v2() -> int:
            return 1

        load()
        (span,) = telemetry.spans("migrate orders")
    (event,) = [e for e in span.events if e.name == semconv.EVENT_FEATURE_FLAG]
    assert event.attributes is not None
    assert event.attributes[semconv.ATTR_FF_REASON] == reason
    assert event.attributes[semconv.ATTR_FF_VARIANT] == phase.value

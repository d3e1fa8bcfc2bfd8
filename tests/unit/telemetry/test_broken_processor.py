"""A span processor that raises (the user's, on the user's provider) never fails a routed call:
the call returns its result, the span is lost, and the failure is logged once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from aurum_otel import FileStore, Phase, Rollout, migrated, testing


class _Raising(SpanProcessor):
    def __init__(self, at: str) -> None:
        self.at = at

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.at == "start":
            raise RuntimeError("a processor broke at start")

    def on_end(self, span: Any) -> None:
        if self.at == "end":
            raise RuntimeError("a processor broke at end")


@pytest.mark.parametrize("phase", [Phase.LEGACY, Phase.HYBRID])
@pytest.mark.parametrize("at", ["start", "end"])
def test_a_raising_span_processor_never_fails_the_call(
        tmp_path: Path, phase: Phase, at: str, caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()
    provider.add_span_processor(_Raising(at))
    store = FileStore.in_dir(tmp_path)
    store.transition("orders", phase, Rollout(percent=0, compare=100), actor="t", reason="t")
    ran: list[int] = []
    with testing.CapturedTelemetry(store=store) as telemetry:
        @migrated("orders", tracer_provider=provider)
        def load(i: int) -> int:
            ran.append(i)
            return i * 10

        @load.simplified
        def _load(i: int) -> int:
            return i * 10

        with caplog.at_level(logging.WARNING, logger="aurum_otel"):
            assert [load(1), load(2), load(3)] == [10, 20, 30]
            telemetry.wait_for_shadows()
        counted = sum(point.value for attributes, point in telemetry.points("aurum.migration.calls")
                      if attributes.get("aurum.migration.role") == "authoritative")
    assert ran[:3] == [1, 2, 3] and counted == 3  # every call ran once and was counted
    broken = [r for r in caplog.records if "span processor raised" in r.getMessage()]
    assert len(broken) == 1, [r.getMessage() for r in caplog.records]  # logged once

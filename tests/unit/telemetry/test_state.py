"""One owner of process state: reset() forgets counts, instruments, readers, writers and the
mismatch log; configure() and setup_telemetry() work in either order (issue 14)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import aurum_otel
from aurum_otel import FileStore, Phase, Rollout, migrated, semconv
from aurum_otel.registry import configure, get_registry, reset


def _routed(name: str) -> migrated:  # type: ignore[valid-type]
    @migrated(name)
    def call(i: int) -> int:
        return i

    @call.simplified
    def _call(i: int) -> int:
        return i

    return call


def _calls(reader: InMemoryMetricReader, name: str) -> float:
    data = reader.get_metrics_data()
    assert data is not None
    return sum(p.value for rm in data.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics if m.name == semconv.METRIC_CALLS
               for p in m.data.data_points if p.attributes[semconv.ATTR_NAME] == name)


def test_after_reset_a_long_lived_provider_exports_the_new_counts_only() -> None:
    """The SDK keeps the first observable counter of a name per provider: after reset() the
    provider (like a global one set once) must still export the new aggregator's counts."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    configure(meter_provider=provider)
    call = _routed("orders")
    for i in range(5):
        call(i)
    assert _calls(reader, "orders") == 5
    reset()
    configure(meter_provider=provider)
    call = _routed("orders")
    for i in range(3):
        call(i)
    assert _calls(reader, "orders") == 3  # the 5 before reset() are forgotten
    assert get_registry().instruments().aggregator.calls() != {}


def test_configure_keeps_the_counts_and_setup_telemetry_in_either_order(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    configure(meter_provider=provider)
    call = _routed("orders")
    call(1)
    configure(store=FileStore.in_dir(tmp_path))  # the README's OpenFeature/store step, later
    call(2)
    assert _calls(reader, "orders") == 2


def test_reset_stops_the_metrics_file_writer_after_flushing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURUM_ENABLE_MIGRATION_MONITORING", "1")
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    reset()
    FileStore.in_dir(tmp_path).transition("orders", Phase.HYBRID, Rollout(percent=100, compare=0),
                                          actor="t", reason="t")
    configure(meter_provider=MeterProvider())
    call = _routed("orders")
    for i in range(4):
        call(i)
    assert "aurum-metrics-file" in _threads()  # the guide's monitoring flag started it
    reset()
    assert "aurum-metrics-file" not in _threads()  # no writer (nor its exit hook) left behind
    written = json.loads((tmp_path / "migration_metrics.json").read_text())
    assert written["orders_migration"]["simplified_calls"] == 4  # flushed, nothing lost


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive()]


def test_reset_forgets_the_health_reader_that_setup_telemetry_attached() -> None:
    handle = aurum_otel.setup_telemetry("t", otlp=False, metrics_file=False, set_global=False)
    get_registry().health_reader = handle.health_reader
    configure()  # carried over
    assert get_registry().health_reader is handle.health_reader
    reset()
    assert get_registry().health_reader is None
    handle.shutdown()


def test_reset_forgets_what_the_mismatch_log_held_back(caplog: pytest.LogCaptureFixture) -> None:
    from aurum_otel.registry import get_registry

    with caplog.at_level(logging.WARNING):
        mismatch_log = get_registry().mismatch_log  # what the shadow runs log through
        for _ in range(50):
            mismatch_log.emit("orders", "mismatch")  # past the burst: held back
        aurum_otel.reset()
        caplog.clear()
        mismatch_log = get_registry().mismatch_log
        assert mismatch_log.emit("orders", "after reset")
    assert [r.getMessage() for r in caplog.records] == ["after reset"]


def test_reset_closes_the_store_it_built_and_never_one_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store built from AURUM_STATE_URL (a Redis reader thread) was left running by every
    reset()/configure(); a store passed in is its caller's to close."""
    import aurum_otel.registry as registry_module
    from aurum_otel import FileStore
    from aurum_otel.registry import configure, get_registry

    closed: list[str] = []

    class Owned(FileStore):
        def close(self) -> None:
            closed.append("owned")

    class Given(FileStore):
        def close(self) -> None:
            closed.append("given")

    monkeypatch.setattr(registry_module, "store_from_url",
                        lambda url, state_dir: Owned.in_dir(tmp_path))
    get_registry().store.snapshot()
    aurum_otel.reset()
    assert closed == ["owned"]
    configure(store=Given.in_dir(tmp_path))
    aurum_otel.reset()
    assert closed == ["owned"]


@pytest.mark.parametrize(("phase", "rollout", "expected"), [
    (Phase.LEGACY, Rollout(), 0.0), (Phase.HYBRID, Rollout(percent=10, compare=25), 10.0),
    (Phase.SIMPLIFIED, Rollout(), 100.0)])
def test_the_rollout_gauge_exports_each_migrations_configured_percent(
    tmp_path: Path, phase: Phase, rollout: Rollout, expected: float
) -> None:
    """The generated split alert compares the observed split with this gauge: without it the
    alert could never fire."""
    from aurum_otel import testing

    FileStore.in_dir(tmp_path).transition("gauged", phase, rollout, actor="t", reason="t")

    @migrated("gauged")
    def work() -> int:
        return 1

    with testing.capture(state_dir=tmp_path) as telemetry:
        work()
        points = [(attrs, point.value) for attrs, point in
                  telemetry.points("aurum.migration.rollout.percent")]
    assert points == [({"aurum.migration.name": "gauged"}, expected)]

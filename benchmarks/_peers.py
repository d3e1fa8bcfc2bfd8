"""The peers: naive OpenTelemetry instrumentation, a pass-through decorator, LaunchDarkly's Migrator
and GitHub-Scientist-style ``laboratory.Experiment``, all offline."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Status, StatusCode, TracerProvider

from aurum_otel import semconv

# --------------------------------------------------------------------------------------------
# Naive instrumentation: what a team writes by hand, with the same span, event, attributes, metric
# instruments and providers as aurum-otel (legacy phase: legacy serves, no shadow).


def naive_instrumented(
    function: Callable[..., Any], name: str, tracer_provider: TracerProvider,
    meter_provider: MeterProvider, *, phase: str = "legacy", phase_source: str = "store",
) -> Callable[..., Any]:
    tracer = tracer_provider.get_tracer("bench.naive")
    meter = meter_provider.get_meter("bench.naive")
    calls = meter.create_counter(semconv.METRIC_CALLS, unit="{call}")
    duration = meter.create_histogram(
        semconv.METRIC_DURATION, unit="s",
        explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
    )
    span_name = f"migrate {name}"
    flag_key = f"aurum.migration.{name}.phase"

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(
            span_name,
            attributes={
                "aurum.migration.name": name,
                "aurum.migration.phase": phase,
                "aurum.migration.implementation": "legacy",
                "aurum.migration.role": "authoritative",
                "aurum.migration.phase_source": phase_source,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.add_event("feature_flag.evaluation", {
                "feature_flag.key": flag_key,
                "feature_flag.result.variant": phase,
                "feature_flag.provider.name": "aurum-otel",
            })
            started = time.perf_counter()
            outcome = "success"
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                outcome = "error"
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                elapsed = time.perf_counter() - started
                span.set_attribute("aurum.migration.outcome", outcome)
                attributes = {
                    "aurum.migration.name": name,
                    "aurum.migration.phase": phase,
                    "aurum.migration.implementation": "legacy",
                    "aurum.migration.role": "authoritative",
                    "aurum.migration.outcome": outcome,
                }
                calls.add(1, attributes)
                duration.record(elapsed, attributes)

    return wrapper


# --------------------------------------------------------------------------------------------
# A decorator that does nothing but forward (the floor for "monitoring off").


def passthrough(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------
# LaunchDarkly: Migrator.read in the shadow stage, flag from TestData, no events, no network.

LD_FLAG = "bench-migration"


class LaunchDarkly:
    """An LDClient on a ``TestData`` source (``send_events=False``, no diagnostics) and a migrator."""

    def __init__(self, old: Callable[[Any], Any], new: Callable[[Any], Any],
                 compare: Callable[[Any, Any], bool] | None = None,
                 hooks: list[Any] | None = None) -> None:
        from ldclient import Config, Context, LDClient, Result
        from ldclient.integrations.test_data import TestData
        from ldclient.migrations import ExecutionOrder, MigratorBuilder, Stage

        self.td = TestData.data_source()
        self.td.update(
            self.td.flag(LD_FLAG)
            .variations("off", "dualwrite", "shadow", "live", "rampdown", "complete")
            .variation_for_all(2)  # "shadow": old authoritative, new also run and compared
        )
        config = Config(
            "bench-sdk-key-offline",
            update_processor_class=self.td,
            send_events=False,
            diagnostic_opt_out=True,
            hooks=list(hooks or []),
        )
        self.client = LDClient(config=config, start_wait=5)
        if not self.client.is_initialized():
            raise RuntimeError("LaunchDarkly TestData client did not initialise")
        self.context = Context.create("bench-user")
        builder = MigratorBuilder(self.client)
        builder.read_execution_order(ExecutionOrder.SERIAL)
        builder.read(
            lambda payload: Result.success(old(payload)),
            lambda payload: Result.success(new(payload)),
            compare if compare is not None else (lambda a, b: a == b),
        )
        builder.write(lambda payload: Result.success(None), lambda payload: Result.success(None))
        migrator = builder.build()
        if isinstance(migrator, str):
            raise RuntimeError(f"LaunchDarkly migrator: {migrator}")
        self.migrator = migrator
        self.default_stage = Stage.OFF
        stage, _ = self.client.migration_variation(LD_FLAG, self.context, Stage.OFF)
        if stage is not Stage.SHADOW:
            raise RuntimeError(f"LaunchDarkly flag gave stage {stage}, expected shadow")

    def read(self, payload: Any) -> Any:
        result = self.migrator.read(LD_FLAG, self.context, self.default_stage, payload)
        return result.value

    def close(self) -> None:
        self.client.close()


class LaunchDarklyTraced(LaunchDarkly):
    """What a LaunchDarkly user who wants traces runs: the same offline ``Migrator.read`` with the
    LaunchDarkly OpenTelemetry integration (``ldotel.tracing.Hook``, ``add_spans=True``: a span per
    evaluation and a ``feature_flag`` event on the current span), inside a user span for the call.

    The hook takes its tracer from the *global* tracer provider when it is built, so the caller
    sets the benchmark's provider as the global one first (``opentelemetry.trace.set_tracer_provider``).
    """

    def __init__(self, old: Callable[[Any], Any], new: Callable[[Any], Any],
                 tracer_provider: TracerProvider) -> None:
        from ldotel.tracing import Hook, HookOptions
        from opentelemetry import trace

        if trace.get_tracer_provider() is not tracer_provider:
            raise RuntimeError("set the benchmark's tracer provider as the global one first: "
                               "the LaunchDarkly tracing hook reads the global provider")
        super().__init__(old, new, hooks=[Hook(HookOptions(add_spans=True))])
        self.tracer = tracer_provider.get_tracer("bench.ld-user")

    def read(self, payload: Any) -> Any:
        with self.tracer.start_as_current_span("read settings"):
            result = self.migrator.read(LD_FLAG, self.context, self.default_stage, payload)
            return result.value


# --------------------------------------------------------------------------------------------
# laboratory: an Experiment per call, control then candidate, serial, publish() does nothing.


def laboratory_experiment(control: Callable[..., Any], candidate: Callable[..., Any]) -> Callable[..., Any]:
    import laboratory

    class Quiet(laboratory.Experiment):
        def publish(self, result: Any) -> None:
            # What a real publisher starts with: look at the match (compare already ran).
            _ = result.match

    @functools.wraps(control)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        experiment = Quiet(name="bench")
        experiment.control(control, args=args, kwargs=kwargs)
        experiment.candidate(candidate, args=args, kwargs=kwargs)
        return experiment.conduct(randomize=False)

    return wrapper

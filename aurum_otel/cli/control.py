"""``advance``, ``rollback`` and ``watch``: the commands that write transitions.

When the standard ``OTEL_*`` variables name an OTLP endpoint, each of them exports its
transitions (a ``transition <name>`` span and the ``aurum.migration.transitions`` counter) and
flushes before it exits, so the audit trail reaches the backend.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import (
    FiniteFloat,
    console,
    load_policy,
    make_source,
    metrics_file_guard,
    resolve_name,
    rules_option,
    say,
    source_option,
    url_option,
    user,
    warn,
    window_option,
)
from aurum_otel.control import DEFAULT_PLAN, Controller, Step, Tick
from aurum_otel.errors import ConfigurationError
from aurum_otel.flags import read_flags
from aurum_otel.phase import Phase, Rollout
from aurum_otel.registry import configure
from aurum_otel.telemetry import setup_telemetry

OTLP_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_STYLE = {"healthy": "green", "unhealthy": "red", "inconclusive": "yellow"}


def otlp_configured(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables name an OTLP endpoint (and the SDK is not disabled)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(variable, "").strip() for variable in OTLP_ENDPOINT_VARIABLES)


@contextlib.contextmanager
def exported_transitions() -> Iterator[None]:
    """Export the transitions made inside over OTLP when ``OTEL_*`` configures an endpoint."""
    if not otlp_configured(os.environ):
        yield
        return
    handle = setup_telemetry(os.environ.get("OTEL_SERVICE_NAME") or "aurum-migrate",
                             set_global=False, health=False, metrics_file=False)
    configure(tracer_provider=handle.tracer_provider, meter_provider=handle.meter_provider)
    try:
        yield
    finally:
        handle.shutdown()  # flushes the spans and the counter before the process exits


@cli.command()
@click.argument("name")
@click.argument("phase", required=False)
@click.option("--new", is_flag=True,
              help="NAME is a new migration (without it, NAME must be one the store, the code, "
                   "the metrics file or the environment knows).")
@click.option("--percent", type=FiniteFloat(0, 100), help="Hybrid: share served by simplified.")
@click.option("--compare", type=FiniteFloat(0, 100), help="Hybrid: share shadowed and compared.")
@click.option("--fallback/--no-fallback", default=None, help="Hybrid: serve legacy when simplified raises.")
@click.option("--reason", default="advanced by operator", show_default=True)
@click.option("--actor", default=None, help="Who is advancing (default: $USER).")
def advance(name: str, phase: str | None, new: bool, percent: float | None,
            compare: float | None, fallback: bool | None, reason: str, actor: str | None) -> None:
    """Advance NAME to PHASE (legacy, hybrid, simplified), or to the plan's next step."""
    resolve_name(name, new=new, creating=True)
    target: Phase | Step | None = Phase.parse(phase, variable="PHASE") if phase else None
    with exported_transitions():
        controller = Controller(name, actor=actor or user())
        if percent is not None or compare is not None or fallback is not None:
            current = controller.record()
            base = Phase.HYBRID if target is None else target
            if base is not Phase.HYBRID:
                raise ConfigurationError("--percent/--compare/--fallback", base, "only with hybrid")
            rollout = current.rollout if current.phase is Phase.HYBRID else Rollout()
            changes = {k: v for k, v in (("percent", percent), ("compare", compare),
                                         ("fallback", fallback)) if v is not None}
            target = Step(Phase.HYBRID, rollout.copy(**changes))
        change = controller.advance(target, reason=reason)
        print_transition(change)
    warn_if_pinned(name)


@cli.command()
@click.argument("name")
@click.option("--step", "one_step", is_flag=True, help="Go one plan step back instead of to legacy.")
@click.option("--reason", default="rolled back by operator", show_default=True)
@click.option("--actor", default=None, help="Who is rolling back (default: $USER).")
def rollback(name: str, one_step: bool, reason: str, actor: str | None) -> None:
    """Roll NAME back to legacy (or one plan step with --step)."""
    resolve_name(name)
    with exported_transitions():
        change = Controller(name, actor=actor or user()).rollback(to_legacy=not one_step,
                                                                  reason=reason)
        print_transition(change)
    warn_if_pinned(name)


def print_transition(change: Any) -> None:
    say((change.name, "bold"), f": {change.from_phase.value} -> ",
        (change.to_phase.value, "bold"),
        f" (percent {change.rollout.percent:g}, compare {change.rollout.compare:g}) by "
        f"{change.actor}: {change.reason}")


def warn_if_pinned(name: str) -> None:
    try:
        flags = read_flags(name)
    except ConfigurationError as exc:
        warn(f"{exc}; running processes serve legacy until it is fixed")
        return
    if flags.kill_switch or flags.phase is not None:
        warn(f"the environment of this shell pins {name} "
             f"({'kill switch' if flags.kill_switch else f'phase {flags.phase}'}); "
             "processes with the same environment ignore the store")


@cli.command()
@click.argument("name")
@source_option
@url_option
@rules_option
@window_option
@click.option("--interval", type=FiniteFloat(0.1, 86400), default=30.0, show_default=True,
              help="Seconds between evaluations.")
@click.option("--bake", type=FiniteFloat(0, 30 * 86400), default=300.0, show_default=True,
              help="Seconds a step must stay healthy before the next.")
@click.option("--rollback-after", type=click.IntRange(min=1), default=3, show_default=True,
              help="Consecutive unhealthy verdicts that roll back to legacy.")
@click.option("--give-up-after", type=FiniteFloat(1, 30 * 86400), default=900.0,
              show_default=True,
              help="Seconds of failed evaluations in a row (health source down, hung, erring) "
                   "after which watch exits 3; until then it holds the step and retries.")
@click.option("--max-ticks", type=click.IntRange(min=1), help="Stop after this many evaluations.")
def watch(name: str, source: str, prometheus_url: str | None, rules: str | None,
          window: float | None, interval: float, bake: float, rollback_after: int,
          give_up_after: float, max_ticks: int | None) -> None:
    """Walk NAME through the rollout plan on health verdicts; roll back when unhealthy.

    A failed evaluation never moves the migration: the step holds and watch retries with a
    capped backoff; after --give-up-after seconds of failures in a row it exits 3."""
    resolve_name(name)
    policy = load_policy(rules, window)
    with exported_transitions():
        controller = Controller(name, source=make_source(source, prometheus_url), policy=policy,
                                bake=bake, rollback_after=rollback_after, actor=f"watch@{user()}",
                                give_up_after=give_up_after)
        say(f"watching {name}: plan " + " -> ".join(s.label for s in DEFAULT_PLAN))

        def show(tick: Tick) -> None:
            status = tick.verdict.status.value
            say(f"{time.strftime('%H:%M:%S')} ", (status, _STYLE.get(status, "")),
                f" {tick.action}: {tick.message}")

        guard = metrics_file_guard() if source == "file" else contextlib.nullcontext()
        try:
            with guard:
                controller.watch(interval, max_ticks=max_ticks, on_tick=show)
        except KeyboardInterrupt:
            console.print("stopped")

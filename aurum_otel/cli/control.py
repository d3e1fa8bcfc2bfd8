"""``advance``, ``rollback`` and ``watch``: the commands that write transitions.

When the standard ``OTEL_*`` variables name an OTLP endpoint, each of them exports its
transitions (a ``transition <name>`` span and the ``aurum.migration.transitions`` counter) and
flushes before it exits, so the audit trail reaches the backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import (
    FiniteFloat,
    console,
    fail,
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
from aurum_otel.control import Controller, Step, Tick
from aurum_otel.control.backends import control_store_for, lease_for
from aurum_otel.control.lease import FileLease, Holder, Lease, LeaseKeeper
from aurum_otel.control.plan import Plan, default_document
from aurum_otel.control.show import plan_lines, status_lines
from aurum_otel.control.state import ControlState, Mark
from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.flags import read_flags
from aurum_otel.phase import Phase, Rollout
from aurum_otel.registry import configure, get_registry
from aurum_otel.setup import setup_telemetry
from aurum_otel.store import MigrationRecord

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
        controller = Controller(name, actor=actor or user(), plan=stored_plan(name))
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
        change = Controller(name, actor=actor or user(), plan=stored_plan(name)).rollback(
            to_legacy=not one_step, reason=reason)
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
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="Rollout plan YAML (`aurum-migrate plan validate FILE`; default: built-in).")
@click.option("--lease-wait", type=FiniteFloat(0, 30 * 86400),
              help="Seconds to wait for another watch's lease before exiting 3 (default: wait).")
@click.option("--lease-ttl", type=FiniteFloat(3, 3600), default=30.0, show_default=True,
              help="Redis store: seconds a dead watch's lease outlives it.")
def watch(name: str, source: str, prometheus_url: str | None, rules: str | None,
          window: float | None, interval: float, bake: float, rollback_after: int,
          give_up_after: float, max_ticks: int | None, plan_file: str | None,
          lease_wait: float | None, lease_ttl: float) -> None:
    """Walk NAME through the rollout plan on health verdicts; roll back when unhealthy.

    A failed evaluation never moves the migration: the step holds and watch retries with a
    capped backoff; after --give-up-after seconds of failures in a row it exits 3. One watch
    drives a migration: a second one waits for the lease and takes over when the first ends."""
    resolve_name(name)
    policy = load_policy(rules, window)
    plan = Plan.from_yaml(Path(plan_file), policy) if plan_file else Plan.from_document(
        default_document(bake), policy, source="built-in")
    document = {"bake": bake, **(plan.document or {})}
    store = get_registry().store
    me = Holder(actor=f"watch@{user()}")
    lease = lease_for(store, name, me, lease_ttl)
    with exported_transitions(), _held(name, lease, lease_wait) as keeper:
        controller = Controller(name, source=make_source(source, prometheus_url), policy=policy,
                                plan=plan, bake=bake, rollback_after=rollback_after,
                                actor=me.actor, give_up_after=give_up_after)
        controller.control.update(name, lambda state: dataclasses.replace(
            state, plan=document, plan_source=plan.source))
        say(f"watching {name}: plan " + " -> ".join(s.label for s in plan.steps))

        def show(tick: Tick) -> None:
            status = tick.verdict.status.value
            say(f"{time.strftime('%H:%M:%S')} ", (status, _STYLE.get(status, "")),
                f" {tick.action}: {tick.message}")

        guard = metrics_file_guard() if source == "file" else contextlib.nullcontext()
        try:
            with guard:
                controller.watch(interval, max_ticks=max_ticks, on_tick=show, lease=keeper)
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            notifier = controller.gates.notifier
            if notifier is not None:
                notifier.close(timeout=2.0)


@contextlib.contextmanager
def _held(name: str, lease: Lease | None, wait: float | None) -> Iterator[LeaseKeeper | None]:
    """Hold ``name``'s lease inside (waiting for it, saying who holds it)."""
    if lease is None:
        warn(f"this phase store cannot hold a lease: nothing stops a second watch of {name}")
        yield None
        return

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another watch"
        say(f"waiting for the lease on {name}: held by {who} ({lease.location})")

    keeper = LeaseKeeper(lease, poll=min(1.0, lease.ttl / 3) if lease.ttl else 0.5,
                         on_wait=waiting)
    try:
        if not keeper.acquire(timeout=wait):
            holder = lease.holder()
            fail(f"another watch drives {name}: the lease ({lease.location}) is held by "
                 f"{holder.describe() if holder else 'another watch'}; stop it, or wait longer "
                 "(--lease-wait)")
    except KeyboardInterrupt:
        console.print("stopped")
        raise SystemExit(0) from None
    if keeper.contended:
        say(f"took over the lease on {name} after {keeper.waited:.1f} s")
    try:
        yield keeper
    finally:
        keeper.release()


def _control(name: str) -> tuple[Any, MigrationRecord]:
    store = get_registry().store
    record = store.snapshot().get(name) or MigrationRecord()
    return control_store_for(store), record


def stored_plan(name: str) -> Plan:
    """The plan the last ``watch`` of ``name`` ran (the built-in plan when none)."""
    try:
        state = control_store_for(get_registry().store).load(name)
        if state.plan is not None:
            return Plan.from_document(state.plan, source=state.plan_source)
    except (AurumOtelError, ValueError) as exc:
        warn(f"cannot read the plan of {name} ({exc}); using the built-in plan")
    return Plan()


@cli.command()
@click.argument("name")
@click.option("--reason", default="paused by operator", show_default=True)
@click.option("--actor", default=None, help="Who is pausing (default: $USER).")
def pause(name: str, reason: str, actor: str | None) -> None:
    """Hold NAME's plan at its current step until `aurum-migrate resume NAME`.

    A rollback on unhealthy verdicts still happens while paused."""
    resolve_name(name)
    control, _ = _control(name)
    mark = Mark(actor or user(), reason, time.time())
    control.update(name, lambda state: dataclasses.replace(state, paused=mark))
    say((name, "bold"), f" paused by {mark.by}: {reason}; `aurum-migrate resume {name}` "
        "releases it")


@cli.command()
@click.argument("name")
@click.option("--reason", default="resumed by operator", show_default=True)
@click.option("--actor", default=None, help="Who is resuming (default: $USER).")
def resume(name: str, reason: str, actor: str | None) -> None:
    """Release a pause of NAME: the one put by `pause`, and the plan's pause gate."""
    resolve_name(name)
    control, record = _control(name)
    mark = Mark(actor or user(), reason, time.time())
    before: list[ControlState] = []

    def change(state: ControlState) -> ControlState:
        before.append(state)
        return dataclasses.replace(state.release("pause", record.transition_id, mark),
                                   paused=None)

    control.update(name, change)
    held = before[0].paused
    what = f"the pause by {held.by} ({held.reason})" if held else "the plan's pause gate"
    say((name, "bold"), f" resumed by {mark.by}: released {what}: {reason}")


@cli.command()
@click.argument("name")
@click.option("--reason", required=True, help="Why (kept with the approval and sent to hooks).")
@click.option("--actor", default=None, help="Who approves (default: $USER).")
def approve(name: str, reason: str, actor: str | None) -> None:
    """Approve NAME's next step: lets the watch through the approve gate before it."""
    resolve_name(name)
    control, record = _control(name)
    mark = Mark(actor or user(), reason, time.time())
    state = control.update(name, lambda s: s.release("approve", record.transition_id, mark))
    waiting = state.waiting or {}
    note = ("the watch enters the next step at its next tick"
            if waiting.get("gate") == "approve" else "for the gate after the current step")
    say((name, "bold"), f": {mark.by} approved ({reason}); {note}")


@cli.group()
def plan() -> None:
    """Rollout plans: check a plan file, or show where a migration is in its plan."""


@plan.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@rules_option
def plan_validate(file: str, rules: str | None) -> None:
    """Check the plan FILE (steps, gates, rule names, webhooks) and print it."""
    checked = Plan.from_yaml(Path(file), load_policy(rules, None))
    say(f"{file}: valid, {len(checked.steps)} steps")
    for line in plan_lines(checked, default_bake=(checked.document or {}).get("bake")):
        say(*line)


@plan.command("show")
@click.argument("name")
def plan_show(name: str) -> None:
    """Where NAME is in its plan, what comes next and what holds it."""
    resolve_name(name)
    control, record = _control(name)
    state = control.load(name)
    shown = stored_plan(name)
    lease = lease_for(get_registry().store, name, Holder(actor="plan show"))
    for line in status_lines(name, shown, record, state, _holder(lease),
                             float((state.plan or {}).get("bake", 300.0))):
        say(*line)


def _holder(lease: Lease | None) -> Holder | None:
    # The file keeps a dead holder's name: only a locked file has a holder.
    if isinstance(lease, FileLease) and lease.try_acquire():
        lease.release()
        return None
    return lease.holder() if lease is not None else None

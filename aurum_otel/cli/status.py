"""``status``, ``history`` and ``monitor``: what each migration is doing, as the store and the
metrics file say.

The split is counted from authoritative calls only (shadow runs are not served to anyone) and is
shown beside the percent the rollout asks for.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import (
    EXIT_ERROR,
    FiniteFloat,
    console,
    fail,
    known_migrations,
    metrics_file_guard,
    resolve_name,
    warn,
)
from aurum_otel.control import control_store_for
from aurum_otel.errors import AurumOtelError
from aurum_otel.guide.file_source import FileHealthSource, read_metrics_file, section_name
from aurum_otel.names import ALLOWED, is_valid_name
from aurum_otel.phase import Implementation
from aurum_otel.registry import get_registry


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Every migration: phase, rollout, authoritative split, error rates, p95, mismatches.

    Exits 3 (after printing) when the phase store cannot be read.
    """
    rows = [migration_status(name) for name in known_migrations()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        console.print(status_table(rows))
    snapshot = get_registry().store.snapshot()
    invalid = sorted(repr(n) for n in snapshot.records if not is_valid_name(n))
    if invalid:
        warn(f"the phase store holds records under names that are not valid migration names "
             f"({', '.join(invalid)}); they are not shown and no migration reads them ({ALLOWED})")
    for name, why in sorted(snapshot.corrupt.items()):
        warn(f"migration {name!r}: its record in the phase store is unreadable ({why}); it runs "
             f"on legacy unless the environment pins a phase, the others are unaffected; the "
             f"next `aurum-migrate advance/rollback {name}` keeps the bad record aside")
    problem = snapshot.problem
    if problem is not None:
        warn(f"{problem}; calls run on legacy unless the environment pins a phase; the next "
             "advance/rollback keeps the bad file aside")
    if problem is not None or snapshot.corrupt:
        raise SystemExit(EXIT_ERROR)


def status_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="aurum-otel migrations")
    for column in ("migration", "phase", "from", "rollout", "split legacy/simplified",
                   "errors legacy/simplified", "p95 legacy/simplified", "mismatches",
                   "last transition", "held"):
        table.add_column(column)
    for row in rows:
        hybrid = row["phase"] == "hybrid"
        table.add_row(*(Text(cell) for cell in (
            row["name"], row["phase"], row["phase_source"],
            f"{row['rollout']['percent']:g}% / compare {row['rollout']['compare']:g}%"
            if hybrid else "-",
            split_text(row["split"], row["rollout"]["percent"] if hybrid else None),
            f"{_pct(row['legacy']['error_rate'])} / {_pct(row['simplified']['error_rate'])}",
            f"{_ms(row['legacy']['p95_ms'])} / {_ms(row['simplified']['p95_ms'])}",
            f"{row['mismatches']:g} of {row['comparisons']:g}",
            row["last_transition"] or "-",
            row.get("held") or "-",
        )))
    return table


def split_text(split: Mapping[str, Any], configured: float | None) -> str:
    """``900 / 100 (10.0% simplified; set 10%)``: authoritative calls only."""
    share = split["simplified_share"]
    observed = "-" if share is None else f"{share:.1%} simplified"
    setting = "" if configured is None else f"; set {configured:g}%"
    return f"{split['legacy']:g} / {split['simplified']:g} ({observed}{setting})"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> float:
    """A count from the file; anything that is not a finite count >= 0 reads as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        return 0
    return int(value) if float(value).is_integer() else float(value)


def migration_status(name: str) -> dict[str, Any]:
    """One migration's row of ``status``: phase, rollout, authoritative split, figures."""
    registry = get_registry()
    state = registry.migration(name).resolved().state
    try:
        with metrics_file_guard():
            document = read_metrics_file()
            figures = FileHealthSource().stats(name, 0)
    except AurumOtelError as exc:
        fail(f"{exc}; move the metrics file aside or delete it to start counting again")
    section = _mapping(_mapping(document).get(section_name(name)))
    impls = _mapping(section.get("implementations"))
    comparisons = _mapping(section.get("comparisons"))
    record = registry.store.snapshot().get(name)
    last = record.history[-1] if record and record.history else None

    def side(impl: str) -> dict[str, Any]:
        entry = _mapping(impls.get(impl))
        calls, errs = _count(entry.get("calls")), _count(entry.get("errors"))
        shadow = _count(entry.get("shadow_calls"))
        authoritative = _count(section.get(f"{impl}_calls")) if f"{impl}_calls" in section \
            else max(calls - shadow, 0.0)
        p95 = figures.side(Implementation(impl)).quantile(0.95)
        return {"calls": calls, "authoritative_calls": authoritative, "shadow_calls": shadow,
                "errors": errs, "error_rate": errs / calls if calls else None,
                "p95_ms": None if p95 is None else p95 * 1000}

    legacy, simplified = side("legacy"), side("simplified")
    served = legacy["authoritative_calls"] + simplified["authoritative_calls"]
    return {
        "name": name,
        "phase": state.phase.value,
        "phase_source": state.source,
        "rollout": state.rollout.to_dict(),
        "split": {"legacy": legacy["authoritative_calls"],
                  "simplified": simplified["authoritative_calls"],
                  "simplified_share": simplified["authoritative_calls"] / served if served else None,
                  "configured_percent": state.rollout.percent if state.phase.value == "hybrid"
                  else (100.0 if state.phase.value == "simplified" else 0.0)},
        "legacy": legacy,
        "simplified": simplified,
        "comparisons": sum(_count(v) for v in comparisons.values()),
        "mismatches": _count(comparisons.get("mismatch")),
        "last_transition": (f"{last.from_phase.value}->{last.to_phase.value} by {last.actor}: "
                            f"{last.reason}" if last else None),
        "held": _held(name),
    }


def _held(name: str) -> str | None:
    """What holds the migration's plan: a pause by hand, or the gate ``watch`` waits at."""
    try:
        control = control_store_for(get_registry().store).load(name)
    except Exception:  # the control state is advisory here: status still shows the rest
        return None
    if control.paused is not None:
        return f"paused by {control.paused.by}: {control.paused.reason}"
    if control.waiting:
        gate = control.waiting.get("gate") or control.waiting.get("kind") or "a gate"
        return f"waiting for {gate}"
    return None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(name: str, as_json: bool) -> None:
    """NAME's transitions: when, from, to, who and why. Exits 3 if the store cannot be read."""
    resolve_name(name)
    snapshot = get_registry().store.snapshot()
    if snapshot.problem is not None:
        fail(f"{snapshot.problem}; the history cannot be read: move the state file aside or fix "
             "it (the next advance/rollback keeps it aside)")
    if name in snapshot.corrupt:
        fail(f"migration {name!r}: its record in the phase store is unreadable "
             f"({snapshot.corrupt[name]}); the next `aurum-migrate advance/rollback {name}` keeps "
             "it aside")
    record = snapshot.get(name)
    items = [t.to_dict() for t in record.history] if record else []
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["at"]))
        console.print(Text(f"{stamp}  {item['from']:>10} -> {item['to']:<10} "
                           f"{item['rollout']['percent']:>5g}%  {item['actor']}: {item['reason']}"),
                      highlight=False)
    if not items:
        console.print(Text(f"no transitions recorded for {name}"))


@cli.command()
@click.option("--interval", type=FiniteFloat(0.2, 3600), default=2.0, show_default=True)
@click.option("--once", is_flag=True, help="Render once and exit (for scripts).")
def monitor(interval: float, once: bool) -> None:
    """A live terminal dashboard of every migration (Ctrl-C to quit)."""

    def render() -> Table:
        table = Table(title=f"aurum-otel migrations  {time.strftime('%H:%M:%S')}")
        for column in ("migration", "phase", "rollout", "split legacy/simplified",
                       "errors l/s", "p95 l/s", "mismatches"):
            table.add_column(column)
        for name in known_migrations():
            row = migration_status(name)
            hybrid = row["phase"] == "hybrid"
            table.add_row(*(Text(cell) for cell in (
                row["name"], row["phase"],
                f"{row['rollout']['percent']:g}%" if hybrid else "-",
                split_text(row["split"], row["rollout"]["percent"] if hybrid else None),
                f"{_pct(row['legacy']['error_rate'])} / {_pct(row['simplified']['error_rate'])}",
                f"{_ms(row['legacy']['p95_ms'])} / {_ms(row['simplified']['p95_ms'])}",
                f"{row['mismatches']:g}",
            )))
        return table

    if once:
        console.print(render())
        return
    try:
        with Live(render(), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                get_registry().invalidate()
                live.update(render())
    except KeyboardInterrupt:
        pass

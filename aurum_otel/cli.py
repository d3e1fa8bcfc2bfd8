"""``aurum-migrate``: status, advance, rollback, health, watch, monitor, rules and the demo.

Exit codes: 0 success (``health``: healthy), 1 unhealthy, 2 inconclusive, 3 an error that says what
to change, 64 a usage error.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from aurum_otel.control import DEFAULT_PLAN, Controller, Step
from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.flags import read_flags
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.stats import HealthSource
from aurum_otel.health.verdict import Status, Verdict
from aurum_otel.metrics_file import FileHealthSource, read_metrics_file, section_name
from aurum_otel.phase import Implementation, Phase, Rollout
from aurum_otel.registry import get_registry

EXIT_ERROR = 3
EXIT_USAGE = 64
console = Console()
errors = Console(stderr=True)

_STATUS_EXIT = {Status.HEALTHY: 0, Status.UNHEALTHY: 1, Status.INCONCLUSIVE: 2}
_STATUS_STYLE = {Status.HEALTHY: "green", Status.UNHEALTHY: "red", Status.INCONCLUSIVE: "yellow"}


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise SystemExit(EXIT_ERROR)


def known_migrations() -> list[str]:
    registry = get_registry()
    names = {"settings", "database", *registry.names(), *registry.store.snapshot().records}
    try:
        names.update(k.removesuffix("_migration") for k in read_metrics_file()
                     if k.endswith("_migration"))
    except AurumOtelError:
        pass
    return sorted(names)


def make_source(kind: str, url: str | None) -> HealthSource:
    if kind == "prometheus":
        from aurum_otel.health.prometheus import PrometheusSource

        return PrometheusSource(url)
    if kind == "file":
        return FileHealthSource()
    raise ConfigurationError("--source", kind, "file or prometheus")


def load_policy(rules: str | None, window: float | None) -> HealthPolicy:
    policy = HealthPolicy.from_yaml(Path(rules)) if rules else HealthPolicy()
    if window is not None:
        if window <= 0:
            raise ConfigurationError("--window", window, "a positive number of seconds")
        policy = HealthPolicy(policy.rules, window)
    return policy


source_option = click.option(
    "--source", type=click.Choice(["file", "prometheus"]), default="file", show_default=True,
    help="Where figures come from: the metrics file (all processes on this host, since it "
         "began) or Prometheus (PromQL over the window).",
)
url_option = click.option("--prometheus-url", envvar="AURUM_PROMETHEUS_URL",
                          help="Prometheus base URL [env AURUM_PROMETHEUS_URL; default "
                               "http://127.0.0.1:9090].")
rules_option = click.option("--rules", type=click.Path(dir_okay=False),
                            help="Health rules YAML (default: the built-in rules).")
window_option = click.option("--window", type=float, help="Window in seconds (default 300).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aurum-otel")
def cli() -> None:
    """Move a live system from legacy to simplified, gradually, reversibly, observed in OTel."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Every migration: phase, rollout, observed split, error rates, p95, mismatches."""
    rows = [migration_status(name) for name in known_migrations()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="aurum-otel migrations")
    for column in ("migration", "phase", "from", "rollout", "split legacy/simplified",
                   "errors legacy/simplified", "p95 legacy/simplified", "mismatches",
                   "last transition"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["phase"], row["phase_source"],
            f"{row['rollout']['percent']:g}% / compare {row['rollout']['compare']:g}%"
            if row["phase"] == "hybrid" else "-",
            f"{row['legacy']['calls']} / {row['simplified']['calls']}",
            f"{_pct(row['legacy']['error_rate'])} / {_pct(row['simplified']['error_rate'])}",
            f"{_ms(row['legacy']['p95_ms'])} / {_ms(row['simplified']['p95_ms'])}",
            f"{row['mismatches']} of {row['comparisons']}",
            row["last_transition"] or "-",
        )
    console.print(table)
    problem = get_registry().store.snapshot().problem
    if problem is not None:
        errors.print(f"[yellow]warning:[/] {problem}; calls run on legacy unless the environment "
                     "pins a phase; the next advance/rollback keeps the bad file aside")
        raise SystemExit(EXIT_ERROR)


def migration_status(name: str) -> dict[str, Any]:
    registry = get_registry()
    state = registry.migration(name).resolved().state
    try:
        document = read_metrics_file()
    except AurumOtelError as exc:
        fail(f"{exc}; move the file aside or delete it to start counting again")
    section = document.get(section_name(name), {})
    impls = section.get("implementations", {})
    record = registry.store.snapshot().get(name)
    last = record.history[-1] if record and record.history else None
    comparisons = section.get("comparisons", {})

    figures = FileHealthSource().stats(name, 0)

    def side(impl: str) -> dict[str, Any]:
        entry = impls.get(impl, {})
        calls, errs = entry.get("calls", 0), entry.get("errors", 0)
        p95 = figures.side(Implementation(impl)).quantile(0.95)
        return {"calls": calls, "errors": errs, "shadow_calls": entry.get("shadow_calls", 0),
                "error_rate": errs / calls if calls else None,
                "p95_ms": None if p95 is None else p95 * 1000}

    return {
        "name": name,
        "phase": state.phase.value,
        "phase_source": state.source,
        "rollout": state.rollout.to_dict(),
        "legacy": side("legacy"),
        "simplified": side("simplified"),
        "comparisons": sum(comparisons.values()),
        "mismatches": comparisons.get("mismatch", 0),
        "last_transition": (f"{last.from_phase.value}->{last.to_phase.value} by {last.actor}: "
                            f"{last.reason}" if last else None),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


@cli.command()
@click.argument("name")
@click.argument("phase", required=False)
@click.option("--percent", type=click.FloatRange(0, 100), help="Hybrid: share served by simplified.")
@click.option("--compare", type=click.FloatRange(0, 100), help="Hybrid: share shadowed and compared.")
@click.option("--fallback/--no-fallback", default=None, help="Hybrid: serve legacy when simplified raises.")
@click.option("--reason", default="advanced by operator", show_default=True)
@click.option("--actor", default=None, help="Who is advancing (default: $USER).")
def advance(name: str, phase: str | None, percent: float | None, compare: float | None,
            fallback: bool | None, reason: str, actor: str | None) -> None:
    """Advance NAME to PHASE (legacy, hybrid, simplified), or to the plan's next step."""
    controller = Controller(name, actor=actor or _user())
    target: Phase | Step | None = Phase.parse(phase, variable="PHASE") if phase else None
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
    _print_transition(change)
    _warn_if_pinned(name)


@cli.command()
@click.argument("name")
@click.option("--step", "one_step", is_flag=True, help="Go one plan step back instead of to legacy.")
@click.option("--reason", default="rolled back by operator", show_default=True)
@click.option("--actor", default=None, help="Who is rolling back (default: $USER).")
def rollback(name: str, one_step: bool, reason: str, actor: str | None) -> None:
    """Roll NAME back to legacy (or one plan step with --step)."""
    change = Controller(name, actor=actor or _user()).rollback(to_legacy=not one_step, reason=reason)
    _print_transition(change)
    _warn_if_pinned(name)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(name: str, as_json: bool) -> None:
    """NAME's transitions: when, from, to, who and why."""
    record = get_registry().store.snapshot().get(name)
    items = [t.to_dict() for t in record.history] if record else []
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["at"]))
        console.print(f"{stamp}  {item['from']:>10} -> {item['to']:<10} "
                      f"{item['rollout']['percent']:>5g}%  {item['actor']}: {item['reason']}",
                      highlight=False)
    if not items:
        console.print(f"no transitions recorded for {name}")


def _print_transition(change: Any) -> None:
    console.print(
        f"[bold]{change.name}[/]: {change.from_phase.value} -> [bold]{change.to_phase.value}[/] "
        f"(percent {change.rollout.percent:g}, compare {change.rollout.compare:g}) by "
        f"{change.actor}: {change.reason}", highlight=False)


def _warn_if_pinned(name: str) -> None:
    try:
        flags = read_flags(name)
    except ConfigurationError as exc:
        errors.print(f"[yellow]warning:[/] {exc}; running processes serve legacy until it is fixed")
        return
    if flags.kill_switch or flags.phase is not None:
        errors.print(f"[yellow]warning:[/] the environment of this shell pins {name} "
                     f"({'kill switch' if flags.kill_switch else f'phase {flags.phase}'}); "
                     "processes with the same environment ignore the store")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "operator"


@cli.command()
@click.argument("names", nargs=-1)
@source_option
@url_option
@rules_option
@window_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(names: Sequence[str], source: str, prometheus_url: str | None, rules: str | None,
           window: float | None, as_json: bool) -> None:
    """Judge NAMES (default: all) by the health rules. Exit 0 healthy, 1 unhealthy, 2 inconclusive."""
    policy = load_policy(rules, window)
    health_source = make_source(source, prometheus_url)
    verdicts = [policy.evaluate(name, health_source) for name in (names or known_migrations())]
    overall = (Status.UNHEALTHY if any(v.status is Status.UNHEALTHY for v in verdicts) else
               Status.INCONCLUSIVE if any(v.status is Status.INCONCLUSIVE for v in verdicts)
               else Status.HEALTHY)
    if as_json:
        click.echo(json.dumps({"status": overall.value, "healthy": overall is Status.HEALTHY,
                               "migrations": [v.to_dict() for v in verdicts]}, indent=2))
    else:
        for verdict in verdicts:
            print_verdict(verdict)
    raise SystemExit(_STATUS_EXIT[overall])


def print_verdict(verdict: Verdict) -> None:
    style = _STATUS_STYLE[verdict.status]
    console.print(f"[bold]{verdict.name}[/]: [{style}]{verdict.status.value}[/] "
                  f"(source {verdict.source})", highlight=False)
    for result in verdict.results:
        rstyle = _STATUS_STYLE[result.status]
        samples = ", ".join(f"{k} {v:g}" for k, v in result.samples.items())
        console.print(f"  [{rstyle}]{result.status.value:>12}[/] {result.rule}: {result.message} "
                      f"[dim](window {result.window:g} s; {samples})[/]", highlight=False)


@cli.command()
@click.argument("name")
@source_option
@url_option
@rules_option
@window_option
@click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between evaluations.")
@click.option("--bake", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds a step must stay healthy before the next.")
@click.option("--rollback-after", type=click.IntRange(min=1), default=3, show_default=True,
              help="Consecutive unhealthy verdicts that roll back to legacy.")
@click.option("--max-ticks", type=click.IntRange(min=1), help="Stop after this many evaluations.")
def watch(name: str, source: str, prometheus_url: str | None, rules: str | None,
          window: float | None, interval: float, bake: float, rollback_after: int,
          max_ticks: int | None) -> None:
    """Walk NAME through the rollout plan on health verdicts; roll back when unhealthy."""
    controller = Controller(name, source=make_source(source, prometheus_url),
                            policy=load_policy(rules, window), bake=bake,
                            rollback_after=rollback_after, actor=f"watch@{_user()}")
    console.print(f"watching {name}: plan " + " -> ".join(s.label for s in DEFAULT_PLAN),
                  highlight=False)

    def show(tick: Any) -> None:
        style = _STATUS_STYLE[tick.verdict.status]
        console.print(f"{time.strftime('%H:%M:%S')} [{style}]{tick.verdict.status.value}[/] "
                      f"{tick.action}: {tick.message}", highlight=False)

    try:
        controller.watch(interval, max_ticks=max_ticks, on_tick=show)
    except KeyboardInterrupt:
        console.print("stopped")


@cli.command()
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True)
@click.option("--once", is_flag=True, help="Render once and exit (for scripts).")
def monitor(interval: float, once: bool) -> None:
    """A live terminal dashboard of every migration (Ctrl-C to quit)."""
    from rich.live import Live

    def render() -> Table:
        table = Table(title=f"aurum-otel migrations  {time.strftime('%H:%M:%S')}")
        for column in ("migration", "phase", "rollout", "legacy calls", "simplified calls",
                       "errors l/s", "p95 l/s", "mismatches"):
            table.add_column(column)
        for name in known_migrations():
            row = migration_status(name)
            table.add_row(
                row["name"], row["phase"],
                f"{row['rollout']['percent']:g}%" if row["phase"] == "hybrid" else "-",
                str(row["legacy"]["calls"]), str(row["simplified"]["calls"]),
                f"{_pct(row['legacy']['error_rate'])} / {_pct(row['simplified']['error_rate'])}",
                f"{_ms(row['legacy']['p95_ms'])} / {_ms(row['simplified']['p95_ms'])}",
                f"{row['mismatches']}",
            )
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


@cli.command()
@click.option("--duration", type=click.FloatRange(min=5), default=40.0, show_default=True,
              help="Seconds the demo's workload runs.")
@click.option("--no-fault", is_flag=True, help="Do not inject the fault midway.")
@click.option("--state-dir", type=click.Path(file_okay=False),
              help="Where the demo keeps its state and metrics files (default: a fresh temporary "
                   "directory, so your own ~/.aurum is untouched).")
def demo(duration: float, no_fault: bool, state_dir: str | None) -> None:
    """The main job: a realistic workload walked across the plan, a fault, an automatic rollback."""
    from aurum_otel.demo import run_demo

    raise SystemExit(run_demo(duration=duration, fault=not no_fault, state_dir=state_dir,
                              console=console))


@cli.command()
@rules_option
@window_option
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the rules here instead of standard output.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False),
              help="Exit 3 if this file differs from what would be generated.")
@click.option("--for", "for_", default="30s", show_default=True,
              help="How long an alert condition must hold before it fires.")
def rules(rules: str | None, window: float | None, output: str | None,
          check_path: str | None, for_: str) -> None:
    """Generate Prometheus recording and alerting rules from the health rules."""
    from aurum_otel.health.promrules import generate_rules

    text = generate_rules(load_policy(rules, window), for_=for_)
    if check_path:
        current = Path(check_path).read_text(encoding="utf-8") if Path(check_path).exists() else ""
        if current != text:
            fail(f"{check_path} is out of date; regenerate it with "
                 f"`aurum-migrate rules -o {check_path}`")
        console.print(f"{check_path} is up to date")
        return
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``aurum-migrate`` console script."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="aurum-migrate",
                 standalone_mode=False)
    except click.exceptions.Abort:
        errors.print("aborted")
        raise SystemExit(EXIT_ERROR) from None
    except click.UsageError as exc:
        exc.show(file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None
    except AurumOtelError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()

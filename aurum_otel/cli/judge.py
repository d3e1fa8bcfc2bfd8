"""``health`` (a verdict per migration, as an exit code) and ``rules`` (Prometheus rules)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.backtest import run_backtest
from aurum_otel.cli.common import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_UNHEALTHY,
    FilePath,
    FiniteFloat,
    PromDuration,
    console,
    fail,
    known_migrations,
    load_policy,
    make_source,
    metrics_file_guard,
    resolve_name,
    rules_option,
    say,
    source_option,
    url_option,
    window_option,
)
from aurum_otel.errors import AurumOtelError
from aurum_otel.health.paired import is_shadow_step, with_paired
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.promrules import generate_rules
from aurum_otel.health.verdict import Status, Verdict
from aurum_otel.names import check_name
from aurum_otel.registry import get_registry

_STATUS_EXIT = {Status.HEALTHY: EXIT_OK, Status.UNHEALTHY: EXIT_UNHEALTHY,
                Status.INCONCLUSIVE: EXIT_INCONCLUSIVE}
_STATUS_STYLE = {Status.HEALTHY: "green", Status.UNHEALTHY: "red", Status.INCONCLUSIVE: "yellow"}


@cli.command()
@click.argument("names", nargs=-1)
@source_option
@url_option
@rules_option
@window_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--replay", type=PromDuration(),
              help="Backtest: replay the rules over this much of Prometheus's history (e.g. 6h) "
                   "and print when the controller would have advanced or rolled back.")
@click.option("--step", "replay_step", type=FiniteFloat(1, 86400), default=60.0, show_default=True,
              help="With --replay: seconds between evaluations.")
@click.option("--bake", type=FiniteFloat(0, 30 * 86400), default=300.0, show_default=True,
              help="With --replay: seconds a step must stay healthy before an advance.")
@click.option("--rollback-after", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --replay: unhealthy verdicts in a row before a rollback.")
def health(names: Sequence[str], source: str, prometheus_url: str | None, rules: str | None,
           window: float | None, as_json: bool, replay: str | None, replay_step: float,
           bake: float, rollback_after: int) -> None:
    """Judge NAMES (default: all) by the health rules. Exit 0 healthy, 1 unhealthy, 2 inconclusive.

    With --replay, backtest instead: one NAME, --source prometheus."""
    if replay is not None:
        if len(names) != 1:
            raise click.UsageError("--replay backtests one migration: name it")
        if source != "prometheus":
            raise click.UsageError("--replay reads the past from Prometheus: add --source prometheus")
        check_name(names[0], variable="NAME")
        run_backtest(names[0], make_source(source, prometheus_url), load_policy(rules, window),
                     replay, replay_step, bake, rollback_after, as_json)
        return
    for name in names:
        # Prometheus may know migrations of other hosts: there, only the spelling is checked.
        if source == "prometheus":
            check_name(name, variable="NAME")
        else:
            resolve_name(name)
    policy = load_policy(rules, window)
    health_source = make_source(source, prometheus_url)
    guard = metrics_file_guard() if source == "file" else contextlib.nullcontext()
    with guard:
        verdicts = [_policy_of(name, policy).evaluate(name, health_source)
                    for name in names or known_migrations()]
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


def _policy_of(name: str, policy: HealthPolicy) -> HealthPolicy:
    """The policy as the controller judges ``name``'s current step: a shadow step adds the
    paired rule (the store unreadable: the policy as it is)."""
    try:
        record = get_registry().store.snapshot().get(name)
    except AurumOtelError:
        return policy
    if record is not None and is_shadow_step(record.phase, record.rollout):
        return with_paired(policy)
    return policy


def print_verdict(verdict: Verdict) -> None:
    say((verdict.name, "bold"), ": ", (verdict.status.value, _STATUS_STYLE[verdict.status]),
        f" (source {verdict.source})")
    for result in verdict.results:
        samples = ", ".join(f"{k} {v:g}" for k, v in result.samples.items())
        say("  ", (f"{result.status.value:>12}", _STATUS_STYLE[result.status]),
            f" {result.rule}: {result.message} ", (f"(window {result.window:g} s; {samples})", "dim"))


@cli.command()
@rules_option
@window_option
@click.option("--output", "-o", type=FilePath(dir_okay=False),
              help="Write the rules here instead of standard output (the folder must exist).")
@click.option("--check", "check_path", type=FilePath(dir_okay=False),
              help="Exit 3 if this file differs from what would be generated.")
@click.option("--for", "for_", type=PromDuration(), default="30s", show_default=True,
              help="How long an alert condition must hold before it fires (30s, 5m, 1h...).")
def rules(rules: str | None, window: float | None, output: str | None,
          check_path: str | None, for_: str) -> None:
    """Generate Prometheus recording and alerting rules from the health rules."""
    text = generate_rules(load_policy(rules, window), for_=for_)
    if check_path:
        try:
            current = Path(check_path).read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        except UnicodeDecodeError:
            current = None
        if current != text:
            fail(f"{check_path} is out of date; regenerate it with "
                 f"`aurum-migrate rules -o {check_path}`")
        console.print(f"{check_path} is up to date", highlight=False)
        return
    if output:
        write_text(Path(output), text)
        console.print(f"wrote {output}", highlight=False)
    else:
        click.echo(text, nl=False)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a regular file is replaced atomically)."""
    folder = path.parent
    if not folder.is_dir():
        fail(f"the folder {folder} does not exist; create it (mkdir -p {folder}) or choose "
             "another --output")
    if path.exists() and not path.is_file():  # a device or a pipe: write straight to it
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            exc.filename = exc.filename or str(path)
            raise
        return
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(descriptor, 0o666 & ~umask)  # as a plain write would create it
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)
        raise

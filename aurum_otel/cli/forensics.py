"""``mismatches`` (captured examples grouped by signature, exported to pytest) and ``replay``."""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import (
    EXIT_ERROR,
    FilePath,
    fail,
    known_migrations,
    resolve_name,
    say,
    warn,
)
from aurum_otel.cli.judge import write_text
from aurum_otel.errors import AurumOtelError
from aurum_otel.flags import GlobalFlags
from aurum_otel.forensics.export import module_text
from aurum_otel.forensics.replay import ReplayError, exit_code, run_in_subprocess, summarize
from aurum_otel.forensics.report import Group, group, total_comparisons, trace_link
from aurum_otel.forensics.storage import Sink, default_sink
from aurum_otel.health.file import read_metrics_file
from aurum_otel.names import check_name, env_token

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_STATUS_STYLE = {"fixed": "green", "differs": "red", "errors": "bold red", "skipped": "yellow"}
_SHOWN = 400  # characters of an example shown in the text output


class Since(click.ParamType[float]):
    """``30m``, ``2h``, ``7d`` ago, or an ISO 8601 date or time (UTC unless it says): epoch seconds."""

    name = "since"
    pattern = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        match = self.pattern.fullmatch(text)
        if match:
            return float(self.clock()) - float(match.group(1)) * _UNITS[match.group(2)]
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is neither a duration (30m, 2h, 7d) nor an ISO date or time "
                      "(2026-11-30 or 2026-11-30T08:00:00+00:00)", param, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return when.timestamp()


def _target_spec(ctx: click.Context | None, param: click.Parameter | None,
                 value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
        raise click.BadParameter(f"{value!r} is not module:function (e.g. myapp.config:load)")
    return value


since_option = click.option("--since", type=Since(),
                            help="Only examples captured since: 30m, 2h, 7d, or an ISO date/time.")
target_option = click.option("--target", callback=_target_spec, metavar="MODULE:FUNCTION",
                             help="The @migrated function, as module:function.")


def _sink() -> Sink:
    return default_sink(GlobalFlags.from_env())


def _read(sink: Sink, name: str, since: float | None) -> list[dict[str, Any]]:
    try:
        return list(sink.read(name, since))
    except (AurumOtelError, OSError):
        raise
    except Exception as exc:  # e.g. Redis unreachable: say where, and what to check
        fail(f"cannot read the mismatch examples from {sink.location}: {type(exc).__name__}: "
             f"{exc}; check that the store is reachable")


def _groups(name: str, since: float | None) -> tuple[Sink, list[Group]]:
    check_name(name, variable="NAME")
    sink = _sink()
    records = _read(sink, name, since)
    if not records and name not in known_migrations():
        resolve_name(name)  # exits 3 with a did-you-mean
    unreadable = getattr(sink, "unreadable_lines", 0)
    if unreadable:
        warn(f"{unreadable} line(s) of {sink.location} are not JSON and were skipped")
    return sink, group(records)


def _nothing(name: str, since: float | None, sink: Sink) -> str:
    when = f" since {_when(since)}" if since is not None else ""
    return (f"no mismatch examples of {name} captured{when} (in {sink.location}); capture is "
            f"opt-in: @migrated({name!r}, capture=True) or AURUM_MIGRATION_{env_token(name)}"
            "_CAPTURE=1")


@cli.command()
@click.argument("name")
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--jaeger-url", envvar="AURUM_JAEGER_URL",
              help="Jaeger UI base URL for trace links [env AURUM_JAEGER_URL].")
@click.option("--export-pytest", "export", type=FilePath(dir_okay=False),
              help="Write a pytest module with one case per signature (needs --target).")
@target_option
def mismatches(name: str, since: float | None, as_json: bool, jaeger_url: str | None,
               export: str | None, target: str | None) -> None:
    """Captured mismatch examples of NAME, grouped by signature (how the results differ)."""
    if export and not target:
        raise click.UsageError("--export-pytest needs --target module:function (the @migrated "
                               "function the tests call)")
    sink, groups = _groups(name, since)
    comparisons = _comparisons(name)
    if export:
        if not groups:
            fail(_nothing(name, since, sink) + "; nothing to export")
        assert target is not None
        write_text(Path(export), module_text(name, target, groups))
        say(f"wrote {export}: {len(groups)} case(s), one per signature; run it with pytest {export}")
        return
    if as_json:
        click.echo(json.dumps({
            "name": name, "since": since, "location": sink.location, "comparisons": comparisons,
            "mismatches": sum(g.count for g in groups), "stored": sum(g.stored for g in groups),
            "signatures": [g.to_dict(comparisons, jaeger_url) for g in groups],
        }, indent=2))
        return
    if not groups:
        say(_nothing(name, since, sink))
        return
    say((name, "bold"), f": {len(groups)} signature(s), {sum(g.count for g in groups)} "
        f"mismatch(es), {sum(g.stored for g in groups)} example(s) stored in {sink.location}")
    for found in groups:
        _print_group(found, comparisons, jaeger_url)


def _comparisons(name: str) -> float | None:
    try:
        return total_comparisons(read_metrics_file(), name)
    except Exception:  # the metrics file is a nicety here: no share rather than no answer
        return None


def _print_group(found: Group, comparisons: float | None, jaeger_url: str | None) -> None:
    share = found.share(comparisons)
    of = f" ({share:.2%} of {comparisons:g} comparisons)" if share is not None else ""
    say("\n", (found.signature, "bold cyan"), f"  {found.count} mismatch(es){of}, first "
        f"{_when(found.first_seen)}, last {_when(found.last_seen)}")
    for part in found.shape:
        say("  ", (part, "yellow"))
    example = found.example
    say("  ", ("inputs ", "dim"), _short({"args": example.get("args"),
                                          "kwargs": example.get("kwargs")}))
    for side in ("authoritative", "shadow"):
        data = example.get(side)
        if isinstance(data, dict):
            what = (f"raised {data.get('error_type')}: {data.get('error_message') or ''}"
                    if data.get("error_type") else f"returned {_short(data.get('value'))}")
            say("  ", (f"{data.get('implementation')} ({side}) ", "dim"), what)
    for trace in found.trace_ids:
        say("  ", ("trace ", "dim"), trace_link(jaeger_url, trace) if jaeger_url else trace)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text)} characters)"


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@cli.command()
@click.argument("name")
@click.option("--signature", "signatures", multiple=True,
              help="Replay only this signature (repeatable; default: all).")
@target_option
@since_option
@click.option("--timeout", type=click.FloatRange(min=1, max=86400), default=600.0,
              show_default=True, help="Seconds the replay process may take.")
def replay(name: str, signatures: tuple[str, ...], target: str | None, since: float | None,
           timeout: float) -> None:
    """Run NAME's captured inputs through both implementations of --target in a fresh process.

    Per signature: fixed, differs (still) or errors (now raises). Exit 0 all fixed, 1 some still
    differ (or could not be replayed), 3 an implementation now errors or the replay failed.
    """
    if not target:
        raise click.UsageError("replay needs --target module:function (the @migrated function)")
    sink, groups = _groups(name, since)
    if signatures:
        known = {g.signature for g in groups}
        unknown = [s for s in signatures if s not in known]
        if unknown:
            fail(f"no captured examples of {name} with signature {', '.join(unknown)} "
                 f"(captured: {', '.join(sorted(known)) or 'none'}); see `aurum-migrate "
                 f"mismatches {name}`")
        groups = [g for g in groups if g.signature in signatures]
    if not groups:
        fail(_nothing(name, since, sink) + "; nothing to replay")
    records = [record for g in groups for record in g.examples]
    try:
        outcomes = run_in_subprocess(target, records, timeout=timeout)
    except ReplayError as exc:
        fail(str(exc))
    summary = summarize(outcomes)
    for found in groups:
        status = summary.get(found.signature, "skipped")
        mine = [o for o in outcomes if o.signature == found.signature]
        say((found.signature, "bold cyan"), "  ", (status, _STATUS_STYLE.get(status, "")),
            f"  ({len(mine)} example(s)); ", "; ".join(found.shape))
        for detail in _details(mine, status):
            say("    ", detail)
    raise SystemExit(exit_code(summary) if summary else EXIT_ERROR)


def _details(outcomes: list[Any], status: str) -> Iterator[str]:
    if status == "fixed":
        return
    shown = 0
    for outcome in outcomes:
        if outcome.status == status and shown < 3:
            shown += 1
            yield "; ".join([outcome.detail, *outcome.differences][:6]).strip("; ")


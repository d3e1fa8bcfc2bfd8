"""``health NAME --replay 6h``: the health rules replayed over Prometheus's history."""

from __future__ import annotations

import json
import re
import time

import click
from rich.text import Text

from aurum_otel.cli.common import console, fail
from aurum_otel.health.backtest import Moment, first_actions, replay
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.registry import get_registry

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """``1h30m`` -> 5400.0 (a Prometheus duration, already checked by the option's type)."""
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration))


def run_backtest(name: str, source: object, policy: HealthPolicy, span: str, step: float,
                 bake: float, rollback_after: int, as_json: bool) -> None:
    """Print, step by step, the verdicts and what the controller would have done."""
    if not isinstance(source, PrometheusSource):
        raise click.UsageError("--replay reads the past from Prometheus: add --source prometheus")
    end = time.time()
    start = end - seconds(span)
    record = get_registry().store.snapshot().get(name)
    history = list(record.history) if record is not None else []
    try:
        moments = replay(policy, name, source.as_of, start=start, end=end, step=step,
                         transitions=history, bake=bake, rollback_after=rollback_after)
    except Exception as exc:  # one failed query ends the replay with what to check
        fail(f"the replay of {name} failed: {exc}")
    first = first_actions(moments)
    if as_json:
        click.echo(json.dumps({
            "migration": name, "start": start, "end": end, "step": step,
            "would_first": first,
            "moments": [{"at": m.at, "status": m.verdict.status.value, "would": m.would,
                         "happened": list(m.happened), "reasons": list(m.verdict.reasons)}
                        for m in moments],
        }, indent=2))
        return
    for moment in moments:
        _print(moment)
    summary = ", ".join(f"first {action} at {_clock(at)}" if at is not None else f"no {action}"
                        for action, at in first.items())
    console.print(Text(f"{name}: with these rules the controller would have: {summary}"),
                  highlight=False)


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _print(moment: Moment) -> None:
    line = f"{_clock(moment.at)}  {moment.verdict.status.value:<12}"
    if moment.would:
        line += f" would {moment.would}"
    for happened in moment.happened:
        line += f"  [happened: {happened}]"
    if moment.would or moment.verdict.status.value != "healthy":
        line += "  " + "; ".join(moment.verdict.reasons)[:200]
    console.print(Text(line), highlight=False)

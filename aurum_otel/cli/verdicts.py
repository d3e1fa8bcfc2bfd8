"""``verdicts``: the verdicts a controller judged, what it did on each, and why."""

from __future__ import annotations

import json
import time

import click
from rich.text import Text

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import console, resolve_name
from aurum_otel.control.backends import control_store_for
from aurum_otel.registry import get_registry


@cli.command()
@click.argument("name")
@click.option("--acted", is_flag=True, help="Only the verdicts the controller acted on.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verdicts(name: str, acted: bool, as_json: bool) -> None:
    """NAME's verdict history: each verdict's figures, what the controller did, and for an
    advance or a rollback the verdicts that led to it and the transition it wrote."""
    resolve_name(name)
    history = list(control_store_for(get_registry().store).load(name).verdicts)
    if acted:
        history = [v for v in history if v.get("transition_id")]
    if as_json:
        click.echo(json.dumps(history, indent=2))
        return
    if not history:
        console.print(Text(f"no verdicts recorded for {name} (watch records them)"))
        return
    for item in history:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(item.get("at", 0))))
        line = (f"{stamp}  {item.get('id')}  {item.get('status', '?'):<12} "
                f"{item.get('action', '?'):<12} {item.get('message', '')}")
        if item.get("transition_id"):
            causes = ", ".join(item.get("caused_by") or []) or "this verdict"
            line += f"  [transition {item['transition_id']}; after {causes}]"
        console.print(Text(line), highlight=False)
        for result in item.get("results") or []:
            if result.get("status") != "healthy":
                console.print(Text(f"      {result.get('rule')}: {result.get('message')}"),
                              highlight=False)

"""``demo``: the two Aurum migrations walked across the plan, a fault, an automatic rollback."""

from __future__ import annotations

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import FilePath, FiniteFloat, console
from aurum_otel.demo import run_demo


@cli.command()
@click.option("--duration", type=FiniteFloat(5, 3600), default=40.0, show_default=True,
              help="Seconds the demo's workload runs.")
@click.option("--no-fault", is_flag=True, help="Do not inject the fault midway.")
@click.option("--state-dir", type=FilePath(file_okay=False),
              help="Where the demo keeps its state and metrics files (default: a fresh temporary "
                   "directory, so your own ~/.aurum is untouched). The demo prints the command "
                   "that watches it.")
def demo(duration: float, no_fault: bool, state_dir: str | None) -> None:
    """The main job: a realistic workload walked across the plan, a fault, an automatic rollback."""
    raise SystemExit(run_demo(duration=duration, fault=not no_fault, state_dir=state_dir,
                              console=console))

"""``aurum-migrate demo``: the two Aurum migrations walked across the plan, a fault, a rollback.

Runs on embedded defaults (sqlite instead of Trino, a temporary state directory unless
``--state-dir`` names one; it prints the ``AURUM_STATE_DIR=... aurum-migrate monitor`` command that
shows that state from another shell), in well under a minute: a realistic workload calls
``load_settings()`` and queries market data through
``get_trino_client()``; a controller per migration advances along the plan on in-process health
verdicts; midway the simplified database client starts failing, and the controller rolls the
database migration back to legacy. Exports OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import logging
import random
import shlex
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aurum_otel.client import migrate_client
from aurum_otel.control import Controller, Step, Tick
from aurum_otel.database import LegacyTrinoClient, SimpleTrinoClient, rows_comparator
from aurum_otel.database.config import ConnectionConfig
from aurum_otel.database.connect import DBAPIConnection, sqlite_connect
from aurum_otel.health.file import FILE_NAME
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.rules import default_rules
from aurum_otel.phase import Phase, Rollout
from aurum_otel.registry import configure, reset
from aurum_otel.report import ReportOptions, write_report
from aurum_otel.settings import load_settings
from aurum_otel.setup import setup_telemetry
from aurum_otel.store import FileStore

# The demo's plan: the default steps, with fallback on so callers are shielded while the
# simplified client misbehaves (its failures still count against its health).
DEMO_PLAN = (
    Step(Phase.HYBRID, Rollout(percent=0, compare=100, fallback=True)),
    Step(Phase.HYBRID, Rollout(percent=10, compare=25, fallback=True)),
    Step(Phase.HYBRID, Rollout(percent=50, compare=25, fallback=True)),
    Step(Phase.HYBRID, Rollout(percent=100, compare=25, fallback=True)),
    Step(Phase.SIMPLIFIED),
)
REGIONS = ("ERCOT", "PJM", "CAISO", "MISO", "NYISO", "ISONE", "SPP")


class FaultSwitch:
    """Makes the simplified client's connection fail a share of statements once turned on."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.on = False
        self._rng = rng

    def connect(self, config: ConnectionConfig) -> DBAPIConnection:
        return _FaultyConnection(sqlite_connect(config), self)

    def strike(self) -> bool:
        return self.on and self._rng.random() < self.rate


class _FaultyConnection:
    def __init__(self, inner: DBAPIConnection, switch: FaultSwitch) -> None:
        self._inner = inner
        self._switch = switch

    def cursor(self) -> Any:
        return _FaultyCursor(self._inner.cursor(), self._switch)

    def commit(self) -> Any:
        return self._inner.commit()

    def close(self) -> Any:
        return self._inner.close()


class _FaultyCursor:
    def __init__(self, inner: Any, switch: FaultSwitch) -> None:
        self._inner = inner
        self._switch = switch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def execute(self, operation: str, *args: Any) -> Any:
        if self._switch.strike():
            raise sqlite3.DatabaseError("injected fault: simplified client lost its statement")
        return self._inner.execute(operation, *args)


def _seed(client: Any, rng: random.Random) -> None:
    client.execute("CREATE TABLE IF NOT EXISTS prices (region TEXT, hour INTEGER, price REAL)")
    for region in REGIONS:
        for hour in range(24):
            client.execute("INSERT INTO prices VALUES (?, ?, ?)",
                           (region, hour, round(20 + rng.random() * 80, 2)))


def run_demo(*, duration: float = 40.0, fault: bool = True, state_dir: str | None = None,
             console: Console | None = None, seed: int = 7) -> int:
    """Run the demo; 0 when it showed what it promises, 1 otherwise (with the reason)."""
    console = console or Console()
    rng = random.Random(seed)
    directory = Path(state_dir or tempfile.mkdtemp(prefix="aurum-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    import os

    otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    handle = setup_telemetry(os.environ.get("OTEL_SERVICE_NAME") or "aurum-demo",
                             set_global=False, otlp=otlp,
                             metrics_file_path=directory / FILE_NAME,
                             export_interval_millis=2_000)
    store = FileStore.in_dir(directory)
    configure(store=store, tracer_provider=handle.tracer_provider,
              meter_provider=handle.meter_provider, health_reader=handle.health_reader,
              refresh_interval=0.2)
    switch = FaultSwitch(rate=0.35, rng=random.Random(seed + 1))
    config = ConnectionConfig.sqlite(str(directory / "market.db"), catalog="iceberg")
    database = migrate_client(
        "database",
        LegacyTrinoClient(config, connect=sqlite_connect),
        SimpleTrinoClient(config, connect=switch.connect),
        methods=("query", "execute"), writes=("execute",),
        comparators={"query": rows_comparator},
    )
    policy = HealthPolicy(default_rules(min_samples=20), window=8)
    controllers = {
        name: Controller(name, policy=policy, plan=DEMO_PLAN, bake=max(duration / 14, 2.0),
                         rollback_after=2, actor="demo-controller")
        for name in ("settings", "database")
    }
    console.print(f"[bold]aurum-otel demo[/]: state and metrics in {directory}"
                  + (f"; exporting OTLP to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}" if otlp
                     else "; set OTEL_EXPORTER_OTLP_ENDPOINT to export to a collector"),
                  highlight=False, markup=True)
    console.print(f"watch it from another shell: {watch_command(directory)}", highlight=False,
                  markup=False, soft_wrap=True)
    quiet = logging.getLogger("aurum_otel")
    propagate = quiet.propagate
    quiet.propagate = False  # the demo prints its own account of transitions and mismatches
    quiet.addHandler(logging.NullHandler())
    stop = threading.Event()
    served = {"calls": 0, "errors": 0}
    lock = threading.Lock()
    try:
        _seed(database, rng)
        for controller in controllers.values():
            controller.advance(reason="demo: start the plan with a shadow run")
        workers = [threading.Thread(target=_workload, args=(database, stop, served, lock, seed + i),
                                    daemon=True) for i in range(2)]
        for worker in workers:
            worker.start()
        outcome = _drive(controllers, switch, fault, duration, console, served)
        stop.set()
        for worker in workers:
            worker.join(5)
        _report(controllers, handle.health_reader, served, directory, duration, console)
        handle.force_flush()
        page = write_report(directory / "report.html", ReportOptions(
            tuple(controllers), metrics_path=directory / FILE_NAME, traces=2 if otlp else 0,
            services=(os.environ.get("OTEL_SERVICE_NAME") or "aurum-demo",)), store)
        console.print(f"report (open it in a browser): {page}", highlight=False, markup=False,
                      soft_wrap=True)
        return _judge(controllers, outcome, fault, console)
    finally:
        quiet.propagate = propagate
        stop.set()
        handle.shutdown()
        database.close()
        reset()


def _workload(database: Any, stop: threading.Event, served: dict[str, int], lock: threading.Lock,
              seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        region = rng.choice(REGIONS)
        failed = 0
        try:
            settings = load_settings()
            limit = 1 + rng.randrange(3)
            database.query(
                "SELECT region, hour, price FROM prices WHERE region = ? ORDER BY price DESC "
                f"LIMIT {limit}", (region,))
            database.query("SELECT region, avg(price) FROM prices GROUP BY region")
            _ = settings.environment
        except Exception:
            failed = 1
        with lock:
            served["calls"] += 1
            served["errors"] += failed
        time.sleep(0.002)


def _drive(controllers: dict[str, Controller], switch: FaultSwitch, fault: bool, duration: float,
           console: Console, served: dict[str, int]) -> dict[str, Any]:
    started = time.monotonic()
    # The fault strikes once the database migration serves half its traffic from simplified
    # (or at 60 % of the run at the latest), while fallback still shields callers.
    fault_at = started + duration * 0.6
    outcome: dict[str, Any] = {"fault_at": None, "rolled_back_at": None, "rollback_reason": None}
    while time.monotonic() - started < duration:
        time.sleep(1.0)
        now = time.monotonic()
        halfway = controllers["database"].record().rollout.percent >= 50
        if fault and not switch.on and (now >= fault_at or halfway):
            switch.on = True
            outcome["fault_at"] = now
            console.print(f"[bold red]{now - started:5.1f}s fault injected[/]: the simplified "
                          f"database client now fails {switch.rate:.0%} of its statements",
                          highlight=False)
        for name, controller in controllers.items():
            tick = controller.tick()
            _show(name, tick, now - started, console)
            if name == "database" and tick.action == "rolled_back" and outcome["rolled_back_at"] is None:
                outcome["rolled_back_at"] = now
                outcome["rollback_reason"] = tick.message
        if outcome["rolled_back_at"] and all(
            c.record().phase in (Phase.LEGACY, Phase.SIMPLIFIED) for c in controllers.values()
        ) and now - outcome["rolled_back_at"] > 3:
            break
    return outcome


def _show(name: str, tick: Tick, elapsed: float, console: Console) -> None:
    if tick.action == "advanced" and tick.transition is not None:
        step = tick.message.removeprefix("advanced to ")
        console.print(f"{elapsed:5.1f}s [green]{name}[/] advanced to {step}", highlight=False)
    elif tick.action == "rolled_back":
        console.print(f"{elapsed:5.1f}s [bold red]{name} rolled back to legacy[/]: {tick.message}",
                      highlight=False)
    elif tick.action == "held" and tick.verdict.status.value == "unhealthy":
        console.print(f"{elapsed:5.1f}s [yellow]{name} unhealthy[/]: {tick.message}", highlight=False)


def _report(controllers: dict[str, Controller], reader: Any, served: dict[str, int],
            directory: Path, duration: float, console: Console) -> None:
    console.rule("report")
    table = Table(show_edge=False)
    for column in ("migration", "final", "calls L / S", "errors L / S", "p95 L / S", "mismatches"):
        table.add_column(column)
    for name, controller in controllers.items():
        stats = reader.stats(name, 10 * duration + 3600)

        def rate(value: float | None) -> str:
            return "-" if value is None else f"{value:.1%}"

        def p95(impl: Any) -> str:
            value = impl.quantile(0.95)
            return "-" if value is None else f"{value * 1000:.1f}ms"

        table.add_row(
            name, controller.record().phase.value,
            f"{stats.legacy.calls:g} / {stats.simplified.calls:g}",
            f"{rate(stats.legacy.error_rate)} / {rate(stats.simplified.error_rate)}",
            f"{p95(stats.legacy)} / {p95(stats.simplified)}",
            f"{stats.mismatches:g} of {stats.matches + stats.mismatches:g}",
        )
    console.print(table)
    console.print("L = legacy, S = simplified; calls count shadow runs too.", style="dim")
    for name, controller in controllers.items():
        history = controller.record().history
        walked = " -> ".join(["legacy", *(_label(t.to_phase, t.rollout) for t in history)])
        console.print(f"[bold]{name}[/] walked: {walked}", highlight=False)
        for change in history:
            if change.to_phase is Phase.LEGACY:
                console.print(f"  rolled back by {change.actor}: {change.reason}", highlight=False)
    shielded = "" if served["errors"] else " (fallback shielded every caller)"
    console.print(f"requests served: {served['calls']}, failed for the caller: "
                  f"{served['errors']}{shielded}", highlight=False)
    console.print(f"metrics file: {directory / FILE_NAME}; phase store: {directory}",
                  highlight=False, markup=False)
    console.print(f"look at it again: {watch_command(directory, 'status')}", highlight=False,
                  markup=False, soft_wrap=True)


def watch_command(directory: Path, command: str = "monitor") -> str:
    """The shell command that shows the demo's migrations (``monitor``, ``status``, ``health``)."""
    return f"AURUM_STATE_DIR={shlex.quote(str(directory))} aurum-migrate {command}"


def _label(phase: Phase, rollout: Rollout) -> str:
    if phase is Phase.HYBRID:
        return "shadow" if rollout.percent == 0 else f"{rollout.percent:g}%"
    return phase.value


def _judge(controllers: dict[str, Controller], outcome: dict[str, Any], fault: bool,
           console: Console) -> int:
    problems = []
    if controllers["settings"].record().phase is not Phase.SIMPLIFIED:
        problems.append("settings did not reach simplified")
    database = controllers["database"].record().phase
    if fault:
        if outcome["fault_at"] is None:
            problems.append("the fault was never injected")
        elif outcome["rolled_back_at"] is None:
            problems.append("the database migration was not rolled back after the fault")
        else:
            console.print(f"fault -> rollback in {outcome['rolled_back_at'] - outcome['fault_at']:.1f} s",
                          highlight=False)
    elif database is not Phase.SIMPLIFIED:
        problems.append("database did not reach simplified")
    if problems:
        console.print("[bold red]demo incomplete:[/] " + "; ".join(problems), highlight=False)
        return 1
    console.print("[bold green]demo complete[/]", highlight=False)
    return 0



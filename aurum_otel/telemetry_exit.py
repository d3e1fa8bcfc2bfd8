"""Shutting telemetry down within a budget: however slow the collector, exit stays prompt."""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aurum_otel.errors import ConfigurationError

EXIT_BUDGET_VARIABLE = "AURUM_EXIT_BUDGET"
DEFAULT_EXIT_BUDGET = 3.0

logger = logging.getLogger("aurum_otel.telemetry")


def resolve_exit_budget(value: float | None) -> float:
    """The total seconds shutdown may take: ``value``, else ``AURUM_EXIT_BUDGET``, else 3.

    Raises:
        ConfigurationError: the budget is not a finite number of seconds >= 0.
    """
    name, raw = ("exit_budget", value) if value is not None else (
        EXIT_BUDGET_VARIABLE, os.environ.get(EXIT_BUDGET_VARIABLE))
    if raw is None or raw == "":
        return DEFAULT_EXIT_BUDGET
    try:
        budget = float(raw)
    except (TypeError, ValueError):
        budget = math.nan
    if isinstance(raw, bool) or not math.isfinite(budget) or budget < 0:
        raise ConfigurationError(name, raw, "a finite number of seconds >= 0, e.g. 3")
    return budget


@dataclass
class TelemetryHandle:
    """What :func:`setup_telemetry` configured; ``shutdown()`` flushes and stops the exporters.

    Shutdown (``shutdown()``, and the interpreter's exit) takes at most ``exit_budget`` seconds in
    all, however slow or unreachable the collector is: what is not exported by then is dropped,
    and a warning says so.
    """

    tracer_provider: Any
    meter_provider: Any
    readers: Sequence[Any] = field(default_factory=tuple)
    health_reader: Any = None
    metrics_file: Any = None
    exit_budget: float = DEFAULT_EXIT_BUDGET
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def force_flush(self, timeout_millis: int = 5_000) -> None:
        self.tracer_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)
        if self.metrics_file is not None:
            self.metrics_file.flush()

    def shutdown(self) -> bool:
        """Flush and stop within the exit budget; ``False`` when it ran out (data dropped)."""
        if self._done.is_set():
            return True
        self._done.set()
        atexit.unregister(self.shutdown)
        deadline = time.monotonic() + self.exit_budget
        steps: list[tuple[str, Any]] = []
        if self.metrics_file is not None:
            steps.append(("metrics file", self.metrics_file.stop))
        steps.append(("traces", self.tracer_provider.shutdown))
        steps.append(("metrics", lambda: self.meter_provider.shutdown(
            timeout_millis=max(deadline - time.monotonic(), 0.0) * 1000)))
        for what, step in steps:
            # Each step runs on a daemon thread: a hung exporter is abandoned at the deadline
            # instead of holding the process's exit.
            worker = threading.Thread(target=_quietly, args=(what, step), daemon=True,
                                      name=f"aurum-shutdown-{what}")
            worker.start()
            worker.join(max(deadline - time.monotonic(), 0.0))
            if worker.is_alive():
                logger.warning("telemetry shutdown: %s not flushed within the exit budget of "
                               "%g s (%s); what was not exported is dropped", what,
                               self.exit_budget, EXIT_BUDGET_VARIABLE)
                return False
        return True


def _quietly(what: str, step: Any) -> None:
    try:
        step()
    except Exception as exc:  # shutdown must not raise into the exit path
        logger.warning("telemetry shutdown: %s failed: %s", what, exc)

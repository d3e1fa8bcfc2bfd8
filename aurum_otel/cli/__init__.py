"""``aurum-migrate``: status, advance, rollback, history, health, watch, monitor, rules, demo.

Exit codes: 0 success (``health``: healthy), 1 unhealthy, 2 inconclusive, 3 an error that says
what to change, 64 a usage error. No input makes it print a traceback.
"""

from __future__ import annotations

from aurum_otel.cli import control, demo, judge, status
from aurum_otel.cli import forensics as forensics
from aurum_otel.cli import report as report
from aurum_otel.cli import verdicts as verdicts
from aurum_otel.cli.app import cli, main
from aurum_otel.cli.common import EXIT_CODES, EXIT_ERROR, EXIT_USAGE

__all__ = ["EXIT_CODES", "EXIT_ERROR", "EXIT_USAGE", "cli", "control", "demo", "judge", "main",
           "status"]

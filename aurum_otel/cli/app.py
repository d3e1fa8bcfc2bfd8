"""The ``aurum-migrate`` group: how every failure becomes a documented exit code, never a traceback.

Exit codes: 0 success (``health``: healthy), 1 unhealthy, 2 inconclusive, 3 an error that says
what to change, 64 a usage error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from aurum_otel.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    describe_os_error,
    error_line,
)
from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.flags import GlobalFlags
from aurum_otel.registry import get_registry

logger = logging.getLogger("aurum_otel.cli")


class AurumGroup(click.Group):
    """A click group whose ``main`` maps every exception to exit 3 or 64 with a clear message.

    Overriding ``main`` (not only the console-script entry point) makes click's ``CliRunner``
    see exactly what a user sees.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> NoReturn:
        try:
            code = super().main(list(args) if args is not None else None,
                                prog_name or "aurum-migrate", complete_var,
                                standalone_mode=False, **extra)
        except SystemExit:
            raise
        except click.exceptions.Abort:
            error_line("aborted")
            raise SystemExit(EXIT_ERROR) from None
        except click.UsageError as exc:
            exc.show(file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        except click.ClickException as exc:
            exc.show(file=sys.stderr)
            raise SystemExit(EXIT_ERROR) from None
        except AurumOtelError as exc:
            error_line(str(exc))
            raise SystemExit(EXIT_ERROR) from None
        except OSError as exc:
            error_line(describe_os_error(exc))
            raise SystemExit(EXIT_ERROR) from None
        except RecursionError:
            error_line("the input is nested too deeply to read; simplify it")
            raise SystemExit(EXIT_ERROR) from None
        except Exception as exc:  # the last line: a bug must still not print a traceback
            logger.debug("unexpected error", exc_info=True)
            error_line(f"unexpected {type(exc).__name__}: {exc}; this is a bug in aurum-otel, "
                       "please report it with the command line that caused it")
            raise SystemExit(EXIT_ERROR) from None
        raise SystemExit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["aurum.help"] = any(arg in ("-h", "--help") for arg in args)
        return super().parse_args(ctx, args)


@click.group(cls=AurumGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aurum-otel")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Move a live system from legacy to simplified, gradually, reversibly, observed in OTel.

    Exit codes: 0 ok (health: healthy), 1 unhealthy, 2 inconclusive, 3 an error that says what
    to change, 64 a usage error.
    """
    if ctx.resilient_parsing or ctx.meta.get("aurum.help"):
        return
    # A running process lets a bad global variable fall back to its own default; the CLI
    # refuses it, so an operator never reads or writes another store by accident.
    problems = GlobalFlags.problems()
    if problems:
        raise problems[0]
    url = os.environ.get("AURUM_STATE_URL")
    if url:
        try:
            _ = get_registry().store
        except ValueError as exc:  # e.g. redis-py on a malformed URL
            raise ConfigurationError(
                "AURUM_STATE_URL", url.rsplit("@", 1)[-1],
                f"a store URL such as redis://host:6379/0, file:///path or openfeature: ({exc})",
            ) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``aurum-migrate`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="aurum-migrate")

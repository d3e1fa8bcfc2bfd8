"""What every ``aurum-migrate`` command shares: consoles, exit codes, parameter types, names.

User data (reasons, actors, names, error messages) is printed as :class:`rich.text.Text`, never
parsed as Rich markup, so ``--reason "ticket [/ops]"`` prints as typed.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import getpass
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.flags import GUIDE_NAMES
from aurum_otel.guide.file_source import FileHealthSource, current_step, default_path, read_metrics_file
from aurum_otel.health.file import split_from_steps
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.health.stats import HealthSource
from aurum_otel.names import check_name, is_valid_name, name_of_token
from aurum_otel.registry import get_registry

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_INCONCLUSIVE = 2
EXIT_ERROR = 3
EXIT_USAGE = 64
EXIT_CODES = (EXIT_OK, EXIT_UNHEALTHY, EXIT_INCONCLUSIVE, EXIT_ERROR, EXIT_USAGE)

console = Console()
errors = Console(stderr=True)

_FLAG_VARIABLE = re.compile(r"AURUM_MIGRATION_(.+)_(ENABLED|PHASE|PERCENT|COMPARE|FALLBACK|MONITORING)")


def text(*parts: str | tuple[str, str]) -> Text:
    """A line of plain strings and ``(string, style)`` pairs; nothing in it is markup."""
    return Text.assemble(*parts)


def say(*parts: str | tuple[str, str]) -> None:
    console.print(text(*parts), highlight=False)


def warn(message: str) -> None:
    errors.print(text(("warning: ", "yellow"), message), highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    errors.print(text(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print ``message`` (what went wrong and what to change) and exit 3."""
    error_line(message)
    raise SystemExit(EXIT_ERROR)


def describe_os_error(exc: OSError) -> str:
    """An ``OSError`` as a sentence that says what to change."""
    where = f" {exc.filename}" if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some disk space or choose another path",
        errno.EDQUOT: "free some disk space or choose another path",
        errno.ENOENT: "create the missing folder or choose an existing path",
        errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
        errno.EISDIR: "it is a folder: give a file path",
        errno.EACCES: "check its permissions or choose another path",
        errno.EPERM: "check its permissions or choose another path",
        errno.EROFS: "the file system is read-only: choose another path",
    }.get(exc.errno or 0, "check the path, its permissions and the disk, then try again")
    return f"cannot use{where}: {what}; {hint}"


class FiniteFloat(click.ParamType[float]):
    """A finite number in a range (``nan`` and ``inf`` are usage errors, unlike click.FloatRange)."""

    name = "number"

    def __init__(self, minimum: float | None = None, maximum: float | None = None, *,
                 min_open: bool = False) -> None:
        self.minimum, self.maximum, self.min_open = minimum, maximum, min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.minimum
        if low is not None and (number < low or (self.min_open and number == low)):
            self.fail(f"{value!r} is not {'>' if self.min_open else '>='} {low:g}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r} is not <= {self.maximum:g}", param, ctx)
        return number


class PromDuration(click.ParamType[str]):
    """A Prometheus duration such as ``30s``, ``5m`` or ``1h30m``."""

    name = "duration"
    pattern = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not isinstance(value, str) or not self.pattern.fullmatch(value):
            self.fail(f"{value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)", param, ctx)
        return value


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (containers without passwd entries): still an actor
        return "operator"


def known_migrations() -> list[str]:
    """Every valid migration name the built-ins, the code, the store, the metrics file or the
    environment know of."""
    registry = get_registry()
    names: set[str] = {*GUIDE_NAMES, *registry.names()}
    try:
        names.update(registry.store.snapshot().records)
    except AurumOtelError:
        pass
    try:
        names.update(k.removesuffix("_migration") for k in read_metrics_file()
                     if isinstance(k, str) and k.endswith("_migration"))
    except (AurumOtelError, OSError, ValueError, TypeError):
        pass
    for variable in os.environ:
        match = _FLAG_VARIABLE.fullmatch(variable)
        token = match and name_of_token(match.group(1))
        if token:
            names.add(token)
    return sorted(n for n in names if is_valid_name(n))


def resolve_name(name: str, *, new: bool = False, creating: bool = False) -> str:
    """``name`` when it is valid and known (or ``new``); otherwise exit 3 with a did-you-mean.

    ``creating``: the command can create a migration (``advance``), so the error says how.
    """
    check_name(name, variable="NAME")
    known = known_migrations()
    if new or name in known:
        return name
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    message = f"unknown migration {name!r}"
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    message += f" (known: {', '.join(known)})"
    if creating:
        message += f"; to start a new migration, run `aurum-migrate advance {name} --new`"
    fail(message)


@contextlib.contextmanager
def metrics_file_guard() -> Iterator[None]:
    """Turn a metrics file of an unexpected shape into exit 3 that says what to do with it."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        fail(f"the metrics file {default_path()} has an unexpected shape ({type(exc).__name__}: "
             f"{exc}); move it aside or delete it to start counting again")


def make_source(kind: str, url: str | None) -> HealthSource:
    if kind == "prometheus":
        return PrometheusSource(url, split_of=split_from_steps(current_step))
    if kind == "file":
        return FileHealthSource()
    raise ConfigurationError("--source", kind, "file or prometheus")


def load_policy(rules: str | None, window: float | None) -> HealthPolicy:
    policy = HealthPolicy.from_yaml(Path(rules)) if rules else HealthPolicy()
    if window is not None:
        policy = HealthPolicy(policy.rules, window)
    return policy


source_option = click.option(
    "--source", type=click.Choice(["file", "prometheus"]), default="file", show_default=True,
    help="Where figures come from: the metrics file (all processes on this host) or Prometheus "
         "(PromQL over the window).",
)
url_option = click.option("--prometheus-url", envvar="AURUM_PROMETHEUS_URL",
                          help="Prometheus base URL [env AURUM_PROMETHEUS_URL; default "
                               "http://127.0.0.1:9090].")
class FilePath(click.Path):
    """A path option that refuses, as a usage error, what the OS cannot open (a NUL byte)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if "\x00" in str(value):
            self.fail("a file name cannot hold a NUL character", param, ctx)
        return super().convert(value, param, ctx)


rules_option = click.option("--rules", type=FilePath(dir_okay=False),
                            help="Health rules YAML (default: the built-in rules).")
window_option = click.option("--window", type=FiniteFloat(0, 365 * 86400, min_open=True),
                             help="Window in seconds (default 300).")

"""The metrics file as this process sees it: where the registry's flags put it, judged per step.

:class:`aurum_otel.health.file.FileHealthSource` takes its path and step lookup as arguments;
this one supplies the process's own (``$AURUM_STATE_DIR`` as the registry read it, and the
registry's :meth:`~aurum_otel.registry.Registry.step_of`), for the guide's functions and the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aurum_otel.health import file
from aurum_otel.health.file import FILE_NAME, section_name
from aurum_otel.registry import get_registry

__all__ = ["FILE_NAME", "FileHealthSource", "current_step", "default_path", "read_metrics_file",
           "section_name"]


def default_path() -> Path:
    """``$AURUM_STATE_DIR/migration_metrics.json``, the state dir as the registry read it."""
    return get_registry().metrics_file_path


def read_metrics_file(path: Path | None = None) -> dict[str, Any]:
    """The metrics file's contents (``{}`` when absent; default: :func:`default_path`).

    Raises:
        CorruptStateError: the file is not valid; it is left in place for inspection.
    """
    return file.read_metrics_file(path or default_path())


def current_step(migration: str) -> tuple[str, float] | None:
    """The migration's step label and start (Unix time), from the registry and the store."""
    return get_registry().step_of(migration)


class FileHealthSource(file.FileHealthSource):
    """Health figures from the metrics file, each migration judged on its current step.

    Args:
        path: the metrics file; default :func:`default_path`, at each evaluation.
        clock: wall-clock seconds, injected for tests.
        step_of: ``name -> (step label, step start)``; default :func:`current_step`.
    """

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time,
                 step_of: Callable[[str], tuple[str, float] | None] | None = None) -> None:
        super().__init__(path, clock=clock, step_of=step_of or current_step,
                         default_path=default_path)

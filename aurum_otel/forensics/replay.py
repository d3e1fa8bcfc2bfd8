"""Replay: captured inputs run again through both implementations, in a fresh process.

``aurum-migrate replay`` writes the examples to a temporary file and runs
``python -m aurum_otel.forensics.replay IN OUT`` (the current folder first on ``sys.path``, as
``python -m`` does), which imports the ``@migrated`` function named by ``module:function``,
calls its ``.legacy`` and ``.simplified_implementation`` on each example's inputs (never the
routed function: no phase, no telemetry), compares with ``fn.options.comparator`` and writes one
outcome per example:

* ``fixed``: the two implementations agree now (same result, or the same exception type);
* ``differs``: they still disagree;
* ``errors``: an implementation raises where the capture saw it return (or raise another type);
* ``skipped``: the example cannot be rebuilt (cut by the size cap, or stored as a ``repr``).

Inputs redacted at capture are replayed as ``"<redacted>"``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aurum_otel.compare import as_result
from aurum_otel.forensics.jsonable import Unrevivable, decode

FIXED, DIFFERS, ERRORS, SKIPPED = "fixed", "differs", "errors", "skipped"
EXIT_FIXED, EXIT_DIFFERS, EXIT_ERROR = 0, 1, 3


class ReplayError(Exception):
    """The replay could not run at all (bad target, the child process failed); says what to do."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What replaying one example gave."""

    signature: str
    status: str
    detail: str = ""
    differences: tuple[str, ...] = ()


def load_target(spec: str) -> Any:
    """The ``@migrated`` function ``module:function`` names (``function`` may be dotted).

    Raises:
        ReplayError: the spec is malformed, the import fails, or the object is not a
            ``@migrated`` function with a simplified implementation.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ReplayError(f"--target {spec!r} is not module:function (e.g. myapp.config:load)")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise ReplayError(f"cannot import {module_name!r} ({exc}); run from the folder that "
                          "contains it, or install the project in this environment") from None
    except AttributeError:
        raise ReplayError(f"{module_name!r} has no {attribute!r}; check --target") from None
    if not hasattr(target, "legacy") or not hasattr(target, "simplified_implementation"):
        raise ReplayError(f"{spec} is not a @migrated function (no .legacy and "
                          ".simplified_implementation); give the decorated function")
    if target.simplified_implementation is None:
        raise ReplayError(f"{spec} has no simplified implementation registered "
                          "(@fn.simplified); nothing to compare")
    return target


def inputs(record: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The example's arguments, rebuilt.

    Raises:
        Unrevivable: the example was truncated or holds a value stored as a ``repr``.
    """
    if record.get("truncated"):
        raise Unrevivable("the example was cut by the size cap")
    args = record.get("args")
    kwargs = record.get("kwargs")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise Unrevivable("the example has no arguments stored")
    return tuple(decode(args)), dict(decode(kwargs))


def _call(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
          ) -> tuple[Any, BaseException | None]:
    try:
        value = function(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
        return value, None
    except Exception as exc:
        return None, exc


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _captured_errors(record: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for side in ("authoritative", "shadow"):
        data = record.get(side)
        if isinstance(data, dict):
            out[str(data.get("implementation"))] = data.get("error_type")
    return out


def replay_example(target: Any, record: dict[str, Any]) -> Outcome:
    """Run one example through both implementations of ``target`` (in this process)."""
    signature = str(record.get("signature") or "unknown")
    try:
        args, kwargs = inputs(record)
    except Unrevivable as exc:
        return Outcome(signature, SKIPPED, str(exc))
    results = {"legacy": _call(target.legacy, args, kwargs),
               "simplified": _call(target.simplified_implementation, args, kwargs)}
    captured = _captured_errors(record)
    new = [f"{impl} now raises {type(error).__name__}: {error}"
           for impl, (_, error) in results.items()
           if error is not None and captured.get(impl) != type(error).__name__]
    if new:
        return Outcome(signature, ERRORS, "; ".join(new))
    (legacy, legacy_error), (simplified, simplified_error) = results.values()
    if legacy_error is not None or simplified_error is not None:
        if (legacy_error is not None and simplified_error is not None
                and type(legacy_error) is type(simplified_error)):
            return Outcome(signature, FIXED, f"both raise {type(legacy_error).__name__}")
        raised = [f"{impl} raises {type(e).__name__}" for impl, (_, e) in results.items() if e]
        return Outcome(signature, DIFFERS, "; ".join(raised))
    try:
        result = as_result(target.options.comparator(legacy, simplified))
    except Exception as exc:
        return Outcome(signature, ERRORS, f"the comparator raised {type(exc).__name__}")
    if result.equal:
        return Outcome(signature, FIXED)
    return Outcome(signature, DIFFERS, result.reason, tuple(result.differences))


def summarize(outcomes: Iterable[Outcome]) -> dict[str, str]:
    """One status per signature: ``errors`` if any example errors, else ``differs`` if any
    differs, ``skipped`` if none could be replayed, else ``fixed``."""
    by_signature: dict[str, set[str]] = {}
    for outcome in outcomes:
        by_signature.setdefault(outcome.signature, set()).add(outcome.status)
    summary = {}
    for signature, statuses in by_signature.items():
        for status in (ERRORS, DIFFERS, FIXED, SKIPPED):
            if status in statuses:
                summary[signature] = status
                break
    return summary


def exit_code(summary: dict[str, str]) -> int:
    """0 every signature fixed, 3 an implementation now errors, 1 otherwise."""
    statuses = set(summary.values())
    if ERRORS in statuses:
        return EXIT_ERROR
    return EXIT_FIXED if statuses == {FIXED} else EXIT_DIFFERS


def run_in_subprocess(target: str, records: Sequence[dict[str, Any]], *,
                      timeout: float = 600.0, cwd: Path | None = None) -> list[Outcome]:
    """Replay ``records`` against ``target`` in a fresh Python process.

    Raises:
        ReplayError: the target cannot be loaded, or the process failed or timed out.
    """
    with tempfile.TemporaryDirectory(prefix="aurum-replay-") as folder:
        given, taken = Path(folder) / "in.json", Path(folder) / "out.json"
        given.write_text(json.dumps({"target": target, "examples": list(records)}),
                         encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "aurum_otel.forensics.replay", str(given), str(taken)],
                cwd=cwd or Path.cwd(), capture_output=True, text=True, timeout=timeout,
                check=False)
        except subprocess.TimeoutExpired:
            raise ReplayError(f"the replay took more than {timeout:g} s; replay fewer examples "
                              "(--signature) or raise --timeout") from None
        if not taken.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise ReplayError("the replay process failed (exit "
                              f"{done.returncode}): {' | '.join(tail) or 'no output'}")
        answer = json.loads(taken.read_text(encoding="utf-8"))
    if "error" in answer:
        raise ReplayError(str(answer["error"]))
    return [Outcome(o["signature"], o["status"], o.get("detail", ""),
                    tuple(o.get("differences", ()))) for o in answer["outcomes"]]


def main(argv: Sequence[str] | None = None) -> int:
    """The child process: ``python -m aurum_otel.forensics.replay IN OUT``."""
    given, taken = (argv if argv is not None else sys.argv[1:])[:2]
    request = json.loads(Path(given).read_text(encoding="utf-8"))
    try:
        target = load_target(request["target"])
    except ReplayError as exc:
        answer: dict[str, Any] = {"error": str(exc)}
    else:
        outcomes = [replay_example(target, record) for record in request["examples"]]
        answer = {"outcomes": [asdict(o) for o in outcomes]}
    Path(taken).write_text(json.dumps(answer, default=repr), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if sys.path and sys.path[0] != os.getcwd():
        sys.path.insert(0, os.getcwd())
    raise SystemExit(main())

"""Hand a mismatch (or a shadow error) to mismatch forensics, with the raw values, when the
migration captures (``@migrated(..., capture=True)`` or ``AURUM_MIGRATION_<NAME>_CAPTURE=1``).

Runs on the shadow worker, before the run releases its snapshots; never raises. The values leave
the process only through :mod:`aurum_otel.forensics`, which redacts them first.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span

from aurum_otel.errors import error_type
from aurum_otel.forensics.capture import capture_enabled, record
from aurum_otel.forensics.example import Example, Side
from aurum_otel.phase import Comparison
from aurum_otel.shadow.snapshot import thaw

if TYPE_CHECKING:
    from aurum_otel.shadow.run import ShadowRun

logger = logging.getLogger("aurum_otel")

CAPTURED = frozenset({Comparison.MISMATCH, Comparison.ERROR})


def wanted(run: ShadowRun, result: Comparison) -> bool:
    """Whether this conclusion is captured (cheap unless it is a mismatch or an error)."""
    if result not in CAPTURED:
        return False
    options = run.router.options
    return capture_enabled(run.router.name, options.capture)


def capture(run: ShadowRun, span: Span, payload: Any, authoritative_value: Any,
            authoritative_error: BaseException | None, value: Any, error: BaseException | None,
            result: Comparison, differences: tuple[str, ...]) -> None:
    try:
        _, args, kwargs = thaw(payload)  # a fresh copy: the shadow may have changed its own
        decision = run.decision
        rollout = run.rollout
        example = Example(
            name=run.router.name, phase=decision.phase.value,
            percent=rollout.percent if rollout is not None else 0.0,
            compare=rollout.compare if rollout is not None else 0.0,
            args=tuple(args), kwargs=dict(kwargs),
            authoritative=_side(decision.authoritative.value, authoritative_value,
                                authoritative_error),
            shadow=_side(run.implementation.value, value, error),
            differences=differences, result=result.value,
            trace_id=format(span.get_span_context().trace_id, "032x"),
            span_id=format(span.get_span_context().span_id, "016x"),
            arg_names=_parameter_names(run),
        )
        record(example, redact=run.router.options.redact)
    except Exception:
        logger.debug("capturing a shadow of %r failed", run.router.name, exc_info=True)


def _parameter_names(run: ShadowRun) -> tuple[str, ...]:
    """The positional parameters' names (without a method's ``self``), so a positional argument
    named like a secret is redacted like a keyword one."""
    try:
        names = [name for name, parameter in inspect.signature(run._legacy).parameters.items()
                 if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return ()
    if names and names[0] in ("self", "cls") and not run.router.simplified_is_bound:
        names = names[1:]
    return tuple(names)


def _side(implementation: str, snapshot: Any, error: BaseException | None) -> Side:
    if error is not None:
        return Side.raised(implementation, error)
    try:
        return Side(implementation, thaw(snapshot))
    except Exception as exc:
        return Side(implementation, None, error_type(exc), "the result could not be rebuilt")

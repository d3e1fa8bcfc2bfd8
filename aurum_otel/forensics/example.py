"""One captured mismatch: the :class:`Example` the call path hands over, and its stored form.

:func:`to_record` turns an example into the JSON-able dict that is stored: inputs and results
encoded and redacted (:mod:`aurum_otel.forensics.jsonable`), the user's ``redact=`` hook applied,
and the whole cut to a size cap with markers. Nothing raw survives it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aurum_otel.forensics.jsonable import Budget, encode, scrub_text, truncated
from aurum_otel.redact import REDACTED, is_secret_key

logger = logging.getLogger("aurum_otel.forensics")

SCHEMA = 1
DEFAULT_MAX_BYTES = 64 * 1024
RedactHook = Callable[[dict[str, Any]], dict[str, Any]]
_SHRINK = ((4096, 256), (1024, 64), (256, 16), (64, 4), (16, 1))
_VALUE_PARTS = (("args",), ("kwargs",), ("authoritative", "value"), ("shadow", "value"))


class Rejected(Exception):
    """The user's ``redact=`` hook failed or returned something else than a dict: not stored."""


@dataclass(frozen=True, slots=True)
class Side:
    """What one implementation did: returned ``value``, or raised ``error_type(error_message)``.

    Attributes:
        implementation: ``legacy`` or ``simplified``.
        value: the result (``None`` when it raised).
        error_type: the exception's type name, when it raised.
        error_message: ``str()`` of the exception (scrubbed of credentials when stored).
    """

    implementation: str
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @classmethod
    def raised(cls, implementation: str, error: BaseException) -> Side:
        try:
            message = str(error)
        except Exception:
            message = ""
        return cls(str(implementation), None, type(error).__name__, message)


@dataclass(frozen=True, slots=True)
class Example:
    """A mismatch (or a shadow error) as the call path saw it, with raw values.

    Attributes:
        name: the migration.
        phase: the phase in force (``hybrid`` in practice).
        percent: the rollout's percent served by simplified.
        compare: the rollout's percent of calls shadowed.
        args: the call's positional arguments (without ``self``).
        kwargs: the call's keyword arguments.
        authoritative: what the authoritative implementation did.
        shadow: what the shadow did.
        differences: the comparator's value-free lines (``port: int != str``).
        result: ``mismatch`` or ``error`` (the comparison's result).
        trace_id: the routed call's trace id, 32 hex digits.
        span_id: the shadow span's (or the call span's) id, 16 hex digits.
        time: when, in seconds since the epoch.
        arg_names: the parameter names of ``args``, when known: a positional argument whose
            name looks like a secret is redacted like a keyword one.
    """

    name: str
    phase: str
    percent: float
    compare: float
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    authoritative: Side
    shadow: Side
    differences: tuple[str, ...] = ()
    result: str = "mismatch"
    trace_id: str | None = None
    span_id: str | None = None
    time: float = field(default_factory=time.time)
    arg_names: tuple[str, ...] = ()


def to_record(example: Example, signature: str, components: tuple[str, ...], *,
              redact: RedactHook | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
              suppressed: int = 0) -> dict[str, Any]:
    """The stored form of ``example``: encoded, redacted, hooked, capped (at most ``max_bytes``).

    Raises:
        Rejected: the ``redact`` hook raised or did not return a dict.
    """
    budget = Budget(max_bytes * 2)
    names = example.arg_names
    args = [_argument(names[i] if i < len(names) else None, value, budget)
            for i, value in enumerate(example.args)]
    record: dict[str, Any] = {
        "v": SCHEMA, "name": example.name, "signature": signature, "shape": list(components),
        "result": str(example.result), "phase": str(example.phase),
        "percent": float(example.percent), "compare": float(example.compare),
        "time": float(example.time), "trace_id": example.trace_id, "span_id": example.span_id,
        "differences": [str(line) for line in example.differences],
        "args": args, "arg_names": [str(n) for n in names[:len(args)]],
        "kwargs": encode(dict(example.kwargs), budget),
        "authoritative": _side(example.authoritative, budget),
        "shadow": _side(example.shadow, budget),
        "suppressed_before": suppressed,
    }
    if redact is not None:
        record = _hooked(record, redact)
    record["truncated"] = budget.truncated
    record["redacted"] = budget.redacted
    return cap(record, max_bytes)


def _argument(name: str | None, value: Any, budget: Budget) -> Any:
    if name is not None and is_secret_key(name):
        budget.redacted += 1
        return REDACTED
    return encode(value, budget)


def _side(side: Side, budget: Budget) -> dict[str, Any]:
    return {
        "implementation": str(side.implementation),
        "value": encode(side.value, budget) if side.error_type is None else None,
        "error_type": side.error_type,
        "error_message": (scrub_text(side.error_message[:4096], budget)
                          if side.error_message else side.error_message),
    }


def _hooked(record: dict[str, Any], redact: RedactHook) -> dict[str, Any]:
    fixed = {key: record[key] for key in ("v", "name", "signature", "shape", "time")}
    try:
        out = redact(record)
    except Exception as exc:
        raise Rejected(f"the redact= hook raised {type(exc).__name__}") from None
    if not isinstance(out, dict):
        raise Rejected(f"the redact= hook returned {type(out).__name__}, not the dict it was given")
    out.update(fixed)  # the hook decides what is shown, not which migration or bug it is
    return out


def size(record: Mapping[str, Any]) -> int:
    return len(dumps(record).encode("utf-8"))


def dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_fallback,
                      allow_nan=False)


def _fallback(value: Any) -> Any:  # what a redact= hook may have put back: its repr
    try:
        return repr(value)
    except Exception:
        return type(value).__name__


def cap(record: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """``record`` cut until its JSON holds at most ``max_bytes`` bytes (``truncated`` set)."""
    record = json.loads(dumps(record))  # a plain JSON tree, whatever a hook returned
    if size(record) <= max_bytes:
        return record
    record["truncated"] = True
    for chars, items in _SHRINK:
        for path in _VALUE_PARTS:
            _set(record, path, _shrink(_get(record, path), chars, items))
        if size(record) <= max_bytes:
            return record
    for path in _VALUE_PARTS:
        _set(record, path, truncated("over the size cap"))
    record["differences"] = record.get("differences", [])[:5]
    for side in ("authoritative", "shadow"):
        if isinstance(record.get(side), dict) and record[side].get("error_message"):
            record[side]["error_message"] = str(record[side]["error_message"])[:256]
    if size(record) > max_bytes:  # a hook that put something huge elsewhere: the bare minimum
        record = {key: record.get(key) for key in ("v", "name", "signature", "shape", "result",
                                                   "phase", "time", "trace_id", "span_id")}
        record.update(truncated=True, shape=record["shape"][:20])
    return record


def _shrink(value: Any, chars: int, items: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= chars else value[:chars] + f"...<truncated {len(value) - chars}>"
    if isinstance(value, list):
        kept = [_shrink(item, chars, items) for item in value[:items]]
        return kept + ([truncated(f"{len(value) - items} more items")] if len(value) > items else [])
    if isinstance(value, dict):
        pairs = list(value.items())
        kept_pairs = {k: _shrink(v, chars, items) for k, v in pairs[:items]}
        if len(pairs) > items:
            kept_pairs["$aurum:more"] = truncated(f"{len(pairs) - items} more keys")
        return kept_pairs
    return value


def _get(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target: Any = record
    for part in path[:-1]:
        target = target.get(part)
        if not isinstance(target, dict):
            return
    if path[-1] in target:
        target[path[-1]] = value

"""Values as JSON, redacted on the way: how a captured example's inputs and results are stored.

:func:`encode` turns any value into JSON-able data, redacting as it goes: the value under a key
that looks like a secret (:func:`aurum_otel.redact.is_secret_key`) and a pydantic ``SecretStr``
become ``"<redacted>"``; text is scrubbed of what looks like a credential whatever its key
(``scheme://user:password@``, ``password=...``, ``token: ...``, ``Bearer ...``). Types JSON lacks
are tagged objects ``{"$aurum": kind, ...}`` (bytes as base64, tuples, sets, non-finite floats,
dates, decimals, UUIDs, enums, dataclasses and pydantic models); anything else is its scrubbed
``repr``, which :func:`decode` cannot bring back. The work is bounded: a budget of characters
and a depth, past which a ``truncated`` marker stands in.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import importlib
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

from aurum_otel.redact import REDACTED, SECRET_KEY_PATTERNS, is_secret_key, is_secret_value

TAG = "$aurum"
MAX_DEPTH = 32

_SECRET_WORD = "|".join(SECRET_KEY_PATTERNS)
# key=value / key: value / "key": "value" where the key looks like a secret.
_KEY_VALUE = re.compile(
    rf"""((?:[\w.-]*(?:{_SECRET_WORD})[\w.-]*)["']?\s*[=:]\s*["']?)([^\s"'&;,}}]+)""",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
_MAYBE_BEARER = re.compile(r"bearer|basic", re.IGNORECASE)
_BEARER = re.compile(r"\b((?:Bearer|Basic)\s+)([A-Za-z0-9._~+/=-]+)", re.IGNORECASE)


class Unrevivable(ValueError):
    """A stored value that cannot be rebuilt (a ``repr``, a truncated or missing part)."""


class Budget:
    """Characters left to spend on one example, and whether anything was cut or redacted."""

    __slots__ = ("left", "redacted", "truncated")

    def __init__(self, chars: int) -> None:
        self.left = chars
        self.truncated = False
        self.redacted = 0

    def spend(self, chars: int) -> bool:
        self.left -= chars
        if self.left < 0:
            self.truncated = True
            return False
        return True


def truncated(note: str = "") -> dict[str, Any]:
    return {TAG: "truncated", "note": note} if note else {TAG: "truncated"}


def scrub_text(text: str, budget: Budget | None = None) -> str:
    """``text`` with what looks like a credential replaced by ``<redacted>``."""
    if ":" not in text and "=" not in text and not _MAYBE_BEARER.search(text):
        return text  # the usual case, settled without the three patterns below
    out = text
    for pattern, keep in ((_URL_PASSWORD, True), (_KEY_VALUE, False), (_BEARER, False)):
        out, count = pattern.subn(
            (lambda m: m.group(1) + REDACTED + m.group(3)) if keep else
            (lambda m: m.group(1) + REDACTED), out)
        if count and budget is not None:
            budget.redacted += count
    return out


def encode(value: Any, budget: Budget, *, depth: int = 0) -> Any:
    """``value`` as JSON-able data, redacted and bounded by ``budget``."""
    if depth > MAX_DEPTH:
        budget.truncated = True
        return truncated("nested too deeply")
    if is_secret_value(value):
        budget.redacted += 1
        return REDACTED
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        text = str(value) if value.bit_length() < 1000 else None
        if text is None or not budget.spend(len(text)):
            return truncated("int")
        return value if type(value) is int else int(value)
    if isinstance(value, float) and not isinstance(value, enum.Enum):
        budget.spend(8)
        if math.isfinite(value):
            return float(value)
        return {TAG: "float", "repr": repr(value)}
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        if not budget.spend(len(value)):
            return truncated(f"str of {len(value)} characters")
        return scrub_text(str(value), budget)
    if isinstance(value, bytes | bytearray):
        if not budget.spend(len(value) * 4 // 3 + 4):
            return truncated(f"bytes of {len(value)}")
        return {TAG: "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    return _encode_other(value, budget, depth)


def _encode_other(value: Any, budget: Budget, depth: int) -> Any:
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "type": _qualified(type(value)), "name": value.name}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return {TAG: type(value).__name__, "iso": value.isoformat()}
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return {TAG: type(value).__name__.lower(), "text": str(value)}
    if isinstance(value, Mapping):
        return _encode_mapping(value, budget, depth)
    if isinstance(value, list | tuple):
        items = _encode_items(value, budget, depth)
        return items if type(value) is list else {TAG: "tuple", "items": items}
    if isinstance(value, set | frozenset):
        items = _encode_items(sorted(value, key=repr), budget, depth)
        return {TAG: type(value).__name__, "items": items}
    fields = _fields(value)
    if fields is not None:
        return {TAG: "object", "type": _qualified(type(value)),
                "fields": _encode_mapping(fields, budget, depth)}
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = text[: max(budget.left, 0) + 64]
    budget.spend(len(text))
    return {TAG: "repr", "type": _qualified(type(value)), "repr": scrub_text(text, budget)}


def _encode_items(items: Any, budget: Budget, depth: int) -> list[Any]:
    out: list[Any] = []
    for index, item in enumerate(items):
        if budget.left <= 0:
            budget.truncated = True
            out.append(truncated(f"{len(items) - index} more items"))
            break
        out.append(encode(item, budget, depth=depth + 1))
    return out


def _encode_mapping(value: Mapping[Any, Any], budget: Budget, depth: int) -> Any:
    plain = all(isinstance(k, str) and k != TAG for k in value)
    pairs: list[Any] = []
    for index, (key, item) in enumerate(value.items()):
        if budget.left <= 0:
            budget.truncated = True
            pairs.append((f"{TAG}:more", truncated(f"{len(value) - index} more keys")))
            break
        budget.spend(len(key) if isinstance(key, str) else 8)
        if is_secret_key(key):
            budget.redacted += 1
            encoded: Any = REDACTED
        else:
            encoded = encode(item, budget, depth=depth + 1)
        pairs.append((key if plain else encode(key, budget, depth=depth + 1), encoded))
    if plain:
        return dict(pairs)
    return {TAG: "dict", "items": [list(pair) for pair in pairs]}


def _fields(value: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    names = getattr(type(value), "model_fields", None)  # a pydantic model
    if isinstance(names, Mapping) and callable(getattr(value, "model_dump", None)):
        try:
            return {name: getattr(value, name) for name in names}
        except Exception:
            return None
    return None


def _qualified(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


# ---------------------------------------------------------------- back to Python (for replay)


def decode(data: Any) -> Any:
    """The value :func:`encode` stored (redacted parts stay ``"<redacted>"``).

    Raises:
        Unrevivable: a part was stored as a ``repr`` or truncated, or its type cannot be imported.
    """
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(TAG)
    if kind is None:
        return {key: decode(item) for key, item in data.items()}
    if kind in _DECODERS:
        return _DECODERS[kind](data)
    if kind == "truncated":
        raise Unrevivable("a part of this example was truncated by the size cap")
    if kind == "repr":
        raise Unrevivable(f"a {data.get('type')} was stored as its repr only")
    raise Unrevivable(f"unknown stored kind {kind!r}")


def _import(qualified: str) -> Any:
    module, _, attribute = qualified.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise Unrevivable(f"cannot import {qualified} ({exc})") from None
    return target


def _object(data: dict[str, Any]) -> Any:
    kind = _import(data["type"])
    fields = decode(data["fields"])
    try:
        return kind(**fields)
    except Exception as exc:
        raise Unrevivable(f"cannot rebuild {data['type']} from its fields ({exc})") from None


_DECODERS: dict[str, Any] = {
    "bytes": lambda d: base64.b64decode(d["base64"]),
    "tuple": lambda d: tuple(decode(d["items"])),
    "set": lambda d: set(decode(d["items"])),
    "frozenset": lambda d: frozenset(decode(d["items"])),
    "float": lambda d: float(d["repr"]),
    "dict": lambda d: {decode(k): decode(v) for k, v in d["items"]},
    "datetime": lambda d: datetime.datetime.fromisoformat(d["iso"]),
    "date": lambda d: datetime.date.fromisoformat(d["iso"]),
    "time": lambda d: datetime.time.fromisoformat(d["iso"]),
    "decimal": lambda d: decimal.Decimal(d["text"]),
    "uuid": lambda d: uuid.UUID(d["text"]),
    "enum": lambda d: _import(d["type"])[d["name"]],
    "object": _object,
}

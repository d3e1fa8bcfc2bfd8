"""Value-free descriptions: how a mismatch report names a value without showing it.

A mismatch report says *where* two results differ (a path) and *how* (types, lengths, a keyed
hash), never *what* they hold. :func:`describe` renders a value as ``str(len 9)#1f2e3d4c``: its type,
its length when it has one, and the first 32 bits of an HMAC-SHA256 of its canonical form under a
key drawn at random when the process starts. Within one process, equal values get equal hashes, so
a report can show that two runs disagree on the same value; across processes the key differs, and
the hash of a short value cannot be brute-forced from a log.

Under a key that looks like a secret (:func:`is_secret_key`) and for ``SecretStr`` values, not even
the length or the hash is shown: ``<redacted>``.

Text that the library did not build (a custom comparator's differences) is reduced by
:func:`sanitize` to its leading path and a description of the rest, unless wrapped in
:class:`ValueFree`, which is how code vouches that a line holds no value.
"""

from __future__ import annotations

import datetime
import enum
import fractions
import hashlib
import hmac
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

REDACTED = "<redacted>"

#: What a secret-looking key contains (case-insensitive); each is tested on its own.
SECRET_KEY_PATTERNS: tuple[str, ...] = (
    "pass",                # password, passwd, passphrase
    "pwd",
    "secret",
    "token",
    "api[_-]?key",
    "private[_-]?key",
    "access[_-]?key",
    "dsn",                 # connection strings carry credentials
    "credential",          # credential, credentials
    "auth",                # auth, authorization, oauth
    "cookie",
)
_SECRET_KEY = re.compile("|".join(SECRET_KEY_PATTERNS), re.IGNORECASE)

#: A dict key shown as it is in a path: it looks like a field name. Any other key is described.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
#: The path a custom comparator's line may start with (``a.b[0].c:``), kept by :func:`sanitize`.
_PATH = re.compile(r"((?:[A-Za-z_][A-Za-z0-9_]{0,39}|\[\d{1,9}\])"
                   r"(?:\.[A-Za-z_][A-Za-z0-9_]{0,39}|\[\d{1,9}\]){0,15}):\s?")

_KEY = os.urandom(32)  # per process: hashes compare within a process, never across
_HEX = 8
# Value types whose repr is a canonical form of their value (no address, no state).
_REPR_TYPES = (range, Decimal, datetime.date, datetime.time, datetime.timedelta, uuid.UUID,
               fractions.Fraction, complex, enum.Enum)


class ValueFree(str):
    """A line of text vouched to hold no user value: reports keep it as it is.

    The library's own difference lines are ``ValueFree``; a custom comparator may wrap lines it
    builds only from paths, types and counts (``ValueFree("row count: 3 != 4")``). Any other text
    in a comparison result is reduced by :func:`sanitize`.
    """

    __slots__ = ()


def is_secret_key(key: object) -> bool:
    """Whether a field name looks like it holds a secret (password, token, api key, dsn, ...)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def is_secret_value(value: object) -> bool:
    """Whether a value is a pydantic secret (``SecretStr``, ``SecretBytes``)."""
    return type(value).__name__ in ("SecretStr", "SecretBytes")


def fingerprint(value: object) -> str | None:
    """``#`` and 8 hex digits of a keyed hash of ``value``; ``None`` when it has no canonical form."""
    digest = hmac.new(_KEY, digestmod=hashlib.sha256)
    try:
        if not _feed(digest, value):
            return None
    except Exception:  # a container whose len() or iteration raises: no canonical form
        return None
    return "#" + digest.hexdigest()[:_HEX]


def describe(value: object) -> str:
    """A value-free rendering: type, length when it has one, keyed hash (``str(len 9)#1f2e3d4c``)."""
    if value is None:
        return "None"
    if is_secret_value(value):
        return REDACTED
    kind = type(value).__name__
    try:
        size = f"(len {len(value)})" if _sized(value) else ""  # type: ignore[arg-type]
    except Exception:
        size = ""
    return f"{kind}{size}{fingerprint(value) or ''}"


def name_or_describe(key: object) -> str:
    """``key`` itself when it looks like a field name, else its description."""
    if isinstance(key, str) and _NAME.fullmatch(key):
        return key
    return describe(key)


def sanitize(text: object) -> ValueFree:
    """``text`` if vouched :class:`ValueFree`; else its leading path kept, the rest described."""
    if isinstance(text, ValueFree):
        return text
    line = text if isinstance(text, str) else _safe_str(text)
    match = _PATH.match(line)
    path = match.group(1) if match else ""
    rest = line[match.end():] if match else line
    if is_secret_key(path):  # a secret anywhere on the path: nothing after it
        return ValueFree(f"{path}: {REDACTED}")
    described = f"custom difference (len {len(rest)}){fingerprint(rest)}"
    return ValueFree(f"{path}: {described}" if path else described)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return type(value).__name__


def _sized(value: object) -> bool:
    return isinstance(value, str | bytes | bytearray | list | tuple | set | frozenset | range
                      | Mapping) or type(value).__name__.startswith("dict_")


def _feed(digest: Any, value: object, depth: int = 0) -> bool:
    """Feed ``value``'s canonical form (type-tagged, order-free for sets and dicts)."""
    if depth > 50:
        return False
    tag = type(value).__name__.encode() + b":"
    if value is None or isinstance(value, bool):
        digest.update(tag + repr(value).encode())
    elif isinstance(value, int):
        digest.update(tag + format(value, "x").encode())  # hex: no digit limit, unlike str()
    elif isinstance(value, float):
        digest.update(tag + (b"nan" if math.isnan(value) else repr(value + 0.0).encode()))
    elif isinstance(value, str):
        digest.update(tag + value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes | bytearray):
        digest.update(tag + bytes(value))
    elif isinstance(value, _REPR_TYPES):
        digest.update(tag + repr(value).encode())
    elif isinstance(value, list | tuple):
        digest.update(tag + str(len(value)).encode() + b"[")
        return all(_feed(digest, item, depth + 1) for item in value)
    elif isinstance(value, Mapping):
        return _feed_unordered(digest, tag, value.items(), depth)
    elif isinstance(value, set | frozenset):
        return _feed_unordered(digest, tag, value, depth)
    else:
        return False
    return True


def _feed_unordered(digest: Any, tag: bytes, items: Iterable[Any], depth: int) -> bool:
    parts: list[bytes] = []
    for item in items:
        sub = hmac.new(_KEY, digestmod=hashlib.sha256)
        if not _feed(sub, item, depth + 1):
            return False
        parts.append(sub.digest())
    digest.update(tag + str(len(parts)).encode() + b"{" + b"".join(sorted(parts)))
    return True

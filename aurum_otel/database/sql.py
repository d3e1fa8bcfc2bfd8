"""A small SQL lexer: enough to sanitize query text and find the operation and a top-level ORDER BY.

Not a parser. It knows string literals, quoted identifiers, comments, numbers and parentheses,
which is what it takes to never leak a literal into telemetry and to tell ``ORDER BY`` in a window
or a subquery from the one that orders the result.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

_TOKEN = re.compile(
    r"""
      (?P<string>[xXbBeEnNuU]?'(?:[^']|'')*'?)     # string / hex / binary literal, maybe cut off
    | (?P<ident>"(?:[^"]|"")*"?|`[^`]*`?)          # quoted identifier
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_MAIN_OPERATIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE", "CREATE", "DROP"}
)
MAX_QUERY_TEXT = 2000


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        yield kind, match.group()


@functools.lru_cache(maxsize=512)
def sanitize(sql: str) -> str:
    """The query text with every literal replaced by ``?`` and comments removed.

    Identifiers (quoted or not) and keywords are kept, so the text still says what ran; values
    never reach a span. Whitespace runs collapse to one space.
    """
    out: list[str] = []
    for kind, text in _tokens(sql):
        if kind in ("string", "number"):
            out.append("?")
        elif kind in ("comment", "space"):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(text)
    return "".join(out).strip()[:MAX_QUERY_TEXT]


@functools.lru_cache(maxsize=512)
def operation_name(sql: str) -> str:
    """The statement's operation, upper-case (``SELECT``, ``INSERT``...; the main one after WITH)."""
    depth = 0
    first = ""
    for kind, text in _tokens(sql):
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "word":
            word = text.upper()
            if not first:
                first = word
                if first != "WITH":
                    return first
            elif depth == 0 and word in _MAIN_OPERATIONS:
                return word
    return first


@functools.lru_cache(maxsize=512)
def has_top_level_order_by(sql: str) -> bool:
    """Whether ``ORDER BY`` orders the result (outside every parenthesis), so row order matters."""
    depth = 0
    after_order = False
    for kind, text in _tokens(sql):
        if kind in ("space", "comment"):
            continue
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif depth == 0 and kind == "word":
            word = text.upper()
            if after_order and word == "BY":
                return True
            after_order = word == "ORDER"
            continue
        after_order = False
    return False

"""What a migration name may be, and the token it takes in environment variable names.

A migration name is 1 to 63 characters of lower-case ASCII letters, digits and ``_``, starting
with a letter: ``settings``, ``database``, ``billing_v2``. The rule exists for three reasons:

* the token in ``AURUM_MIGRATION_<TOKEN>_*`` is the name upper-cased, a one-to-one mapping, so two
  migrations can never share a kill switch or a pin (``db-client`` and ``db_client`` would);
* the name is a Prometheus label value and part of the ``aurum.migration.*`` attributes: no
  quotes, backslashes, newlines or non-ASCII characters to escape or lose;
* it fits everywhere a name is shown (tables, file sections, span names) without quoting.
"""

from __future__ import annotations

import re

from aurum_otel.errors import ConfigurationError

MAX_LENGTH = 63
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
ALLOWED = (
    "1 to 63 lower-case ASCII letters, digits and '_', starting with a letter "
    "(e.g. settings, billing_v2)"
)


def is_valid_name(name: object) -> bool:
    """Whether ``name`` is a valid migration name (see :func:`check_name`)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: object, *, variable: str = "migration name") -> str:
    """Return ``name`` if it is a valid migration name, else raise a :class:`ConfigurationError`.

    Args:
        name: the proposed migration name.
        variable: what to call the setting in the error (an argument, a decorator, a file).

    Raises:
        ConfigurationError: the name is not a string matching ``[a-z][a-z0-9_]{0,62}``; the
            message suggests a valid spelling when there is an obvious one.
    """
    if is_valid_name(name):
        assert isinstance(name, str)
        return name
    allowed = ALLOWED
    suggestion = suggest_name(name) if isinstance(name, str) else None
    if suggestion is not None:
        allowed = f"{ALLOWED}; did you mean {suggestion!r}?"
    raise ConfigurationError(variable, name, allowed)


def suggest_name(name: str) -> str | None:
    """A valid spelling of ``name`` (``Db-Client`` -> ``db_client``), or ``None`` if none is obvious."""
    candidate = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    candidate = re.sub(r"_+", "_", candidate)[:MAX_LENGTH].rstrip("_")
    return candidate if is_valid_name(candidate) and candidate != name else None


def env_token(name: str) -> str:
    """The token of ``name`` in ``AURUM_MIGRATION_<TOKEN>_*`` variables: the name upper-cased.

    One-to-one over valid names, so distinct migrations never share a variable.

    Raises:
        ConfigurationError: ``name`` is not a valid migration name.
    """
    return check_name(name).upper()


def name_of_token(token: str) -> str | None:
    """The migration name whose token is ``token`` (the inverse of :func:`env_token`), if any."""
    name = token.lower()
    return name if is_valid_name(name) and name.upper() == token else None

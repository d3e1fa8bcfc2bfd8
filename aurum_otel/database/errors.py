"""Database errors: one hierarchy for both clients, classification of driver errors, scrubbing.

Both clients translate driver exceptions with :func:`translate`, so when legacy and simplified
fail the same way they raise the same type, and a shadow comparison of two failures matches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from enum import StrEnum
from urllib.parse import quote, quote_plus

from aurum_otel.errors import AurumOtelError, error_type

REDACTED = "<redacted>"

# Trino error names that mean "the cluster cannot take queries right now", not "your query is bad".
_TRINO_UNAVAILABLE = frozenset({
    "SERVER_STARTING_UP",
    "SERVER_SHUTTING_DOWN",
    "NO_NODES_AVAILABLE",
    "TOO_MANY_REQUESTS_FAILED",
    "PAGE_TRANSPORT_TIMEOUT",
    "REMOTE_HOST_GONE",
})
_TRINO_TIMEOUT = frozenset({"EXCEEDED_TIME_LIMIT", "EXCEEDED_CPU_LIMIT"})
_REFUSED_MARKERS = ("connection refused", "newconnectionerror", "failed to establish")


class ErrorKind(StrEnum):
    """What a driver error says about retrying."""

    NOT_SENT = "not_sent"
    """The statement never reached the database (refused connection, lock): safe to retry, even a write."""
    TRANSIENT = "transient"
    """The database or the network failed mid-way: retry reads; a write may have been applied."""
    TIMEOUT = "timeout"
    """The statement ran out of time: not retried, counted against the server."""
    FATAL = "fatal"
    """The statement itself is wrong (syntax, permissions, missing table): never retried."""

    @property
    def server_failure(self) -> bool:
        """Whether this counts against the database's health (the circuit breaker)."""
        return self is not ErrorKind.FATAL


class DatabaseError(AurumOtelError):
    """A statement failed.

    Attributes:
        kind: how the failure classifies for retries.
        driver_error: the driver's exception type (``trino.exceptions.TrinoUserError``), if any.
        error_name: the database's error name (``SYNTAX_ERROR``, ``SQLITE_ERROR``), if known.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.FATAL,
        driver_error: str | None = None,
        error_name: str | None = None,
    ) -> None:
        self.kind = kind
        self.driver_error = driver_error
        self.error_name = error_name
        super().__init__(message)


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached or cannot take queries now."""


class CircuitOpenError(DatabaseUnavailableError):
    """The legacy client's circuit breaker is open: calls fail fast until the reset timeout.

    Attributes:
        retry_after: seconds until the breaker lets a trial call through.
    """

    def __init__(self, target: str, failures: int, retry_after: float) -> None:
        self.retry_after = max(retry_after, 0.0)
        super().__init__(
            f"circuit open for {target} after {failures} consecutive failures; failing fast for "
            f"another {self.retry_after:.1f}s. Check that the database is up and reachable "
            "(scripts/trino.sh status, the server log), or raise the breaker's failure_threshold",
            kind=ErrorKind.NOT_SENT,
        )


class QueryTimeoutError(DatabaseError):
    """A statement ran longer than its time limit and was cancelled."""

    def __init__(self, timeout: float, operation: str) -> None:
        self.timeout = timeout
        super().__init__(
            f"{operation or 'statement'} exceeded its {timeout:g}s time limit and was cancelled; "
            "add a filter or LIMIT, check the cluster's load, or raise query_timeout",
            kind=ErrorKind.TIMEOUT,
        )


class PoolTimeoutError(DatabaseError):
    """No connection or query slot became free in time.

    Attributes:
        resource: ``"connection"`` (the pool) or ``"query slot"`` (the concurrency limit).
        limit: the pool's size or the concurrency limit.
        waited: seconds waited.
    """

    def __init__(self, resource: str, limit: int, waited: float) -> None:
        self.resource = resource
        self.limit = limit
        self.waited = waited
        super().__init__(
            f"no free {resource} after {waited:.2f}s (all {limit} in use); slow statements are "
            f"holding them: check for long queries, or raise the limit or the wait",
            kind=ErrorKind.NOT_SENT,
        )


def classify(error: BaseException) -> ErrorKind:
    """How a driver (trino, sqlite3) or network exception classifies for retries."""
    if isinstance(error, DatabaseError):
        return error.kind
    name = type(error).__name__
    name_of_error = error_name(error)
    if name_of_error in _TRINO_TIMEOUT:
        return ErrorKind.TIMEOUT
    if name_of_error in _TRINO_UNAVAILABLE:
        return (
            ErrorKind.NOT_SENT if name_of_error == "SERVER_STARTING_UP" else ErrorKind.TRANSIENT
        )
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        if "locked" in text or "busy" in text:
            return ErrorKind.NOT_SENT
        if "unable to open" in text or "disk i/o" in text:
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error).lower():
        return ErrorKind.NOT_SENT
    if name in ("Http502Error", "Http503Error", "Http504Error"):
        return ErrorKind.TRANSIENT
    if name == "TrinoConnectionError" and str(error).startswith("failed to fetch"):
        return ErrorKind.TRANSIENT  # the statement was accepted before the connection broke
    if name == "TrinoConnectionError" or isinstance(error, ConnectionError | TimeoutError):
        return ErrorKind.NOT_SENT if _refused(error) else ErrorKind.TRANSIENT
    if type(error).__module__.startswith(("requests", "urllib3")) and (
        "Connection" in name or "Timeout" in name
    ):
        return ErrorKind.NOT_SENT if _refused(error) else ErrorKind.TRANSIENT
    return ErrorKind.FATAL


class ScrubbedDriverError(Exception):
    """Stands in, as the ``__cause__`` of a :class:`DatabaseError`, for a driver exception whose
    message (or chain) held a secret: a logged traceback prints the chain, so the original cannot
    stay in it. Keeps the driver's traceback (where it failed) and its type's name.

    Attributes:
        driver_error: the driver exception's type (``trino.exceptions.TrinoConnectionError``).
    """

    def __init__(self, driver_error: str, message: str) -> None:
        self.driver_error = driver_error
        super().__init__(f"{driver_error}: {message}")


def scrubbed_cause(error: BaseException, secrets: Iterable[str]) -> BaseException:
    """``error`` itself when nothing in its chain shows a secret, else a scrubbed stand-in."""
    secrets = tuple(secret for secret in secrets if secret)
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if not any(scrub(text, secrets) != text for text in map(_text, chain)):
        return error
    message = " <- caused by: ".join(_message(link) for link in chain)  # the driver's words
    stand_in = ScrubbedDriverError(error_type(error), scrub(message, secrets)[:1000])
    return stand_in.with_traceback(error.__traceback__)


def translate(error: BaseException, *, secrets: Iterable[str] = ()) -> DatabaseError:
    """The :class:`DatabaseError` to raise for a driver exception, its message scrubbed of secrets."""
    if isinstance(error, DatabaseError):
        return error
    kind = classify(error)
    driver = error_type(error)
    message = scrub(_message(error), secrets)
    name = error_name(error)
    if kind is ErrorKind.FATAL or kind is ErrorKind.TIMEOUT:
        return DatabaseError(f"{message} ({driver})", kind=kind, driver_error=driver, error_name=name)
    return DatabaseUnavailableError(
        f"database unavailable: {message} ({driver}); check that the server is up and that "
        "host, port and http_scheme are right (AURUM_TRINO__HOST, __PORT, __HTTP_SCHEME)",
        kind=kind, driver_error=driver, error_name=name,
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``<redacted>``.

    Also the secret's URL-encoded forms (drivers print URLs with credentials in them), and the
    longest forms first, so a secret that contains another is hidden whole, not up to the other.
    """
    forms = {form for secret in secrets if secret
             for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret, safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def error_name(error: BaseException) -> str | None:
    """The database's own name for an error (Trino's ``errorName``, sqlite's ``sqlite_errorname``)."""
    for attribute in ("error_name", "sqlite_errorname"):
        value = getattr(error, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _text(error: BaseException) -> str:
    """All an exception may print of itself (its message and its arguments)."""
    try:
        return f"{error!s} {error.args!r}"
    except Exception:
        return type(error).__name__


def _message(error: BaseException) -> str:
    message = getattr(error, "message", None)  # TrinoQueryError: the server's message alone
    text = message if isinstance(message, str) else str(error)
    return (text or type(error).__name__)[:500]


def _refused(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if any(marker in str(current).lower() for marker in _REFUSED_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False

"""Connect functions: ``Callable[[ConnectionConfig], DBAPIConnection]`` for Trino and sqlite.

The clients take any such function, so tests pass fakes and applications can add options (session
properties, a custom HTTP session) without touching the clients.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import requests

from aurum_otel.database.config import MEMORY, ConnectionConfig
from aurum_otel.errors import ConfigurationError

if TYPE_CHECKING:
    from requests.sessions import _Settings

SHARED_MEMORY_URI = "file:aurum?mode=memory&cache=shared"


class DBAPICursor(Protocol):
    """The part of a PEP 249 cursor the clients use."""

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...

    @property
    def rowcount(self) -> int: ...

    def execute(self, operation: str, parameters: Any = ..., /) -> Any: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...

    def close(self) -> Any: ...


class DBAPIConnection(Protocol):
    """The part of a PEP 249 connection the clients use."""

    def cursor(self) -> DBAPICursor: ...

    def commit(self) -> Any: ...

    def close(self) -> Any: ...


Connect = Callable[[ConnectionConfig], DBAPIConnection]


def trino_connect(config: ConnectionConfig) -> DBAPIConnection:
    """Open a Trino DB-API connection (lazy: no request is sent until a statement runs).

    Raises:
        ConfigurationError: a password is set but ``http_scheme`` is not https (Trino accepts
            passwords only over TLS, and sending one in clear text is never what you want).
    """
    import trino.auth
    import trino.dbapi

    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "user": config.user,
        "catalog": config.catalog,
        "schema": config.schema,
        "http_scheme": config.http_scheme,
        "request_timeout": config.request_timeout,
        "max_attempts": config.max_attempts,
        "source": "aurum-otel",
    }
    if config.verify is True:
        options["verify"] = True
    else:
        options["http_session"] = _pinned_verify_session(config.verify)
    if config.password is not None:
        if config.http_scheme != "https":
            raise ConfigurationError(
                "AURUM_TRINO__HTTP_SCHEME",
                config.http_scheme,
                "https when a password is set (Trino accepts passwords only over TLS): "
                "set AURUM_TRINO__HTTP_SCHEME=https",
            )
        options["auth"] = trino.auth.BasicAuthentication(
            config.user, config.password.get_secret_value()
        )
    # trino ships no type for connect(); its Connection satisfies DBAPIConnection.
    open_connection: Callable[..., DBAPIConnection] = trino.dbapi.connect
    return open_connection(**options)


class PinnedVerifySession(requests.Session):
    """A requests session whose own ``verify`` beats the CA bundle variables of the environment.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``
    (psf/requests#3829), so a configured CA bundle or ``verify=False`` would be silently ignored
    on hosts that set them. A per-request ``verify`` still wins.
    """

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: MutableMapping[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
    ) -> _Settings:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None:
            merged["verify"] = self.verify
        return merged


def _pinned_verify_session(verify: bool | str) -> PinnedVerifySession:
    session = PinnedVerifySession()
    session.verify = verify
    return session


def sqlite_connect(config: ConnectionConfig) -> DBAPIConnection:
    """Open the embedded sqlite database in autocommit mode, shareable across threads.

    ``:memory:`` opens one shared in-memory database (``file:aurum?mode=memory&cache=shared``),
    so the legacy and the simple client see the same tables; a ``file:`` path is used as a URI.
    """
    path = config.path
    target = SHARED_MEMORY_URI if path == MEMORY else path
    connection = sqlite3.connect(
        target,
        uri=target.startswith("file:"),
        check_same_thread=False,  # shadows run on worker threads; sqlite3 is built serialized
        isolation_level=None,  # autocommit: a write is applied when execute() returns
        timeout=5.0,
    )
    return connection


def connect_for(config: ConnectionConfig) -> Connect:
    """The default connect function of a config's system."""
    return sqlite_connect if config.system == "sqlite" else trino_connect

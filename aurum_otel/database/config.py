"""``ConnectionConfig``: where one client connects, built from ``AurumSettings.trino``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from aurum_otel.settings.model import TrinoSettings

System = Literal["trino", "sqlite"]
MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """How to reach one catalog; immutable, and its repr never shows the password.

    Attributes:
        system: ``trino``, or ``sqlite`` for the embedded default.
        host: the Trino coordinator (unused by sqlite).
        port: its port.
        user: the Trino user.
        password: for password authentication (Trino requires https for it).
        catalog: the catalog the client queries.
        schema: the default schema.
        http_scheme: ``http`` or ``https``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        path: the sqlite database (``:memory:`` is one in-memory database shared by every
            connection of the process).
        request_timeout: seconds per HTTP request to Trino.
        max_attempts: the Trino driver's own attempts per request; 1, because the clients own
            their retry policy and retries must not multiply.
    """

    system: System = "trino"
    host: str = "localhost"
    port: int = 8080
    user: str = "aurum"
    password: SecretStr | None = field(default=None, repr=False)
    catalog: str = "iceberg"
    schema: str = "market"
    http_scheme: str = "http"
    verify: bool | str = True
    path: str = MEMORY
    request_timeout: float = 30.0
    max_attempts: int = 1

    @classmethod
    def from_settings(
        cls, trino: TrinoSettings, *, catalog: str | None = None, request_timeout: float = 30.0
    ) -> ConnectionConfig:
        """The Trino connection of ``trino`` settings, optionally for another catalog."""
        return cls(
            system="trino",
            host=trino.host,
            port=trino.port,
            user=trino.user,
            password=trino.password,
            catalog=catalog or trino.catalog,
            schema=trino.schema_name,
            http_scheme=trino.http_scheme,
            verify=trino.verify,
            request_timeout=request_timeout,
        )

    @classmethod
    def sqlite(
        cls, path: str = MEMORY, *, catalog: str = "iceberg", schema: str = "market"
    ) -> ConnectionConfig:
        """The embedded sqlite database (the demo's default when no Trino is configured)."""
        return cls(system="sqlite", host="", port=0, catalog=catalog, schema=schema, path=path)

    @property
    def namespace(self) -> str:
        """``catalog.schema``: the OpenTelemetry ``db.namespace``."""
        return f"{self.catalog}.{self.schema}"

    @property
    def target(self) -> str:
        """Where the statements go, for messages (never with credentials)."""
        if self.system == "sqlite":
            return f"sqlite {self.path}"
        return f"trino {self.http_scheme}://{self.host}:{self.port} ({self.namespace})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret strings this config holds, to scrub from any message."""
        return (self.password.get_secret_value(),) if self.password is not None else ()

    def copy(self, **changes: Any) -> ConnectionConfig:
        """A new config with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

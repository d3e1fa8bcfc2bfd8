"""``get_trino_client``: the legacy and the simple client behind one object, routed by phase."""

from __future__ import annotations

from opentelemetry.trace import TracerProvider

from aurum_otel.client import MigratedClient, migrate_client
from aurum_otel.compare import REDACTED
from aurum_otel.database.base import rows_comparator
from aurum_otel.database.config import MEMORY, ConnectionConfig
from aurum_otel.database.connect import Connect, connect_for
from aurum_otel.database.legacy import LegacyOptions, LegacyTrinoClient
from aurum_otel.database.simple import SimpleTrinoClient
from aurum_otel.errors import ConfigurationError
from aurum_otel.hooks import MigrationHooks
from aurum_otel.settings.model import AurumSettings

MIGRATION = "database"


def get_trino_client(
    catalog: str = "iceberg",
    *,
    settings: AurumSettings | None = None,
    connect: Connect | None = None,
    options: LegacyOptions | None = None,
    hooks: MigrationHooks | None = None,
    tracer_provider: TracerProvider | None = None,
) -> MigratedClient:
    """A Trino client for ``catalog`` whose ``query``/``execute`` are routed by the ``database``
    migration (``AURUM_USE_SIMPLE_DB_CLIENT``, ``AURUM_DB_MIGRATION_PHASE``, the phase store).

    ``query`` results are compared with :func:`rows_comparator` in hybrid; ``execute`` is a write
    and never shadowed, so a row is inserted once. ``close()`` closes both clients.

    When ``AURUM_DATABASE_URL`` is a ``sqlite:`` URL, or when no Trino is configured (no
    ``AURUM_TRINO__HOST`` and no ``settings`` given), both clients use the embedded sqlite
    database instead (the demo's default).

    Args:
        catalog: the catalog to query.
        settings: where Trino is and the credentials; default: ``AurumSettings.from_env()``.
        connect: opens DB-API connections (default: Trino's, or sqlite's).
        options: the legacy client's safeguards.
        hooks: called on mismatches and fallbacks (see :class:`~aurum_otel.hooks.BaseHooks`).
        tracer_provider: for the statement spans; default: aurum-otel's, else the global one.

    Raises:
        ConfigurationError: a setting is invalid (named, with the allowed values).
    """
    config = connection_config(catalog, settings)
    opener = connect or connect_for(config)
    legacy = LegacyTrinoClient(
        config, connect=opener, options=options or LegacyOptions(),
        tracer_provider=tracer_provider,
    )
    simple = SimpleTrinoClient(config, connect=opener, tracer_provider=tracer_provider)
    return migrate_client(
        MIGRATION, legacy, simple,
        methods=("query", "execute"),
        writes=("execute",),
        comparators={"query": rows_comparator},
        hooks=hooks,
    )


def connection_config(
    catalog: str = "iceberg", settings: AurumSettings | None = None
) -> ConnectionConfig:
    """Where ``get_trino_client`` connects for ``catalog``: Trino, or the embedded sqlite."""
    explicit = settings is not None
    resolved = settings if settings is not None else AurumSettings.from_env()
    schema = resolved.trino.schema_name
    url = resolved.database_url.get_secret_value() if resolved.database_url else ""
    if url.startswith("sqlite"):
        return ConnectionConfig.sqlite(sqlite_path(url), catalog=catalog, schema=schema)
    if not explicit and not resolved.trino_configured:
        return ConnectionConfig.sqlite(MEMORY, catalog=catalog, schema=schema)
    return ConnectionConfig.from_settings(
        resolved.trino, catalog=catalog, request_timeout=resolved.request_timeout_seconds
    )


def sqlite_path(url: str) -> str:
    """The database path of a ``sqlite:`` URL (``sqlite://`` and ``sqlite:///:memory:``: memory).

    Raises:
        ConfigurationError: the URL is not ``sqlite://`` or ``sqlite:///<path>``.
    """
    if url in ("sqlite:", "sqlite://"):
        return MEMORY
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ConfigurationError(
            "AURUM_DATABASE_URL", REDACTED, "sqlite:///relative.db, sqlite:////absolute.db or "
            "sqlite:///:memory:",
        )
    return url[len(prefix):] or MEMORY

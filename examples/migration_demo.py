"""The Aurum migration guide's demo, on aurum-otel.

    python examples/migration_demo.py                # every step below, in order
    python examples/migration_demo.py setup          # show the flags and where state lives
    python examples/migration_demo.py test-settings  # load settings through the migration
    python examples/migration_demo.py test-database  # query through the routed Trino client
    python examples/migration_demo.py advance        # advance both migrations to hybrid
    python examples/migration_demo.py monitor        # show migration status
    python examples/migration_demo.py health         # validate migration health
    python examples/migration_demo.py rollback       # roll both back to legacy

Phases persist in the phase store (``$AURUM_STATE_DIR``, default ``~/.aurum``) and counts in
``migration_metrics.json`` beside it, so each subcommand sees what the previous ones did. Without
``AURUM_TRINO__HOST`` the database migration runs on the embedded sqlite database.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable

from aurum_otel import (
    advance_db_migration_phase,
    advance_migration_phase,
    get_db_migration_status,
    get_registry,
    log_migration_status,
    rollback_db_migration_phase,
    rollback_migration_phase,
    setup_telemetry,
    validate_migration_health,
)
from aurum_otel.database import get_trino_client
from aurum_otel.settings import load_settings


def setup() -> None:
    flags = {k: v for k, v in sorted(os.environ.items()) if k.startswith("AURUM_")}
    print("AURUM_* flags:", json.dumps(flags, indent=2) if flags else "(none: defaults)")
    registry = get_registry()
    print(f"phase store: {registry.store.location}")
    print(f"metrics file: {registry.global_flags.state_dir / 'migration_metrics.json'}")


def test_settings() -> None:
    for _ in range(50):
        settings = load_settings()
    print(f"settings: environment={settings.environment} trino={settings.trino.host}:"
          f"{settings.trino.port} catalog={settings.trino.catalog}")


def test_database() -> None:
    client = get_trino_client("iceberg")
    try:
        client.execute("CREATE TABLE IF NOT EXISTS demo_prices (region TEXT, price REAL)")
        client.execute("INSERT INTO demo_prices VALUES (?, ?)", ("ERCOT", 42.5))
        for _ in range(50):
            rows = client.query("SELECT region, count(*) FROM demo_prices GROUP BY region")
        print(f"database: {list(rows)}; status: {get_db_migration_status()}")
    finally:
        client.close()


def advance() -> None:
    advance_migration_phase("settings", "hybrid")
    advance_db_migration_phase("hybrid")
    print("advanced settings and database to hybrid (shadow run: percent 0, compare 100)")


def monitor() -> None:
    status = log_migration_status()
    print(json.dumps(status, indent=2))


def health() -> None:
    result = validate_migration_health()
    if result["healthy"]:
        print("✅ Migration is healthy" + (f" (inconclusive: {', '.join(result['inconclusive'])})"
                                          if result["inconclusive"] else ""))
    else:
        print("⚠️ Issues found:")
        for issue in result["issues"]:
            print(f"  - {issue}")


def rollback() -> None:
    rollback_migration_phase("settings")
    rollback_db_migration_phase()
    print("rolled settings and database back to legacy")


STEPS: dict[str, Callable[[], None]] = {
    "setup": setup,
    "test-settings": test_settings,
    "test-database": test_database,
    "advance": advance,
    "monitor": monitor,
    "health": health,
    "rollback": rollback,
}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("AURUM_LOG_LEVEL", "INFO").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    unknown = [a for a in argv if a not in STEPS]
    if unknown:
        print(f"unknown step {unknown[0]!r}; choose from: {', '.join(STEPS)}", file=sys.stderr)
        return 2
    handle = setup_telemetry("migration-demo",
                             otlp=bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")))
    try:
        steps = argv or list(STEPS)
        if not argv:  # the full demo exercises hybrid between advance and rollback
            steps = ["setup", "test-settings", "test-database", "advance", "test-settings",
                     "test-database", "monitor", "health", "rollback"]
        for name in steps:
            print(f"== {name}")
            STEPS[name]()
            if name.startswith("test-"):
                handle.force_flush()
                get_registry().shadows.join(5)
    finally:
        handle.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

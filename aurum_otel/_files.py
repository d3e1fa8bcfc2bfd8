"""Moved to :mod:`aurum_otel.stores.files`; this module keeps the old import path."""

from __future__ import annotations

from aurum_otel.stores.files import (
    check_trusted_dir,
    clean_stale_temps,
    ensure_dir,
    locked,
    move_aside,
    read_json,
    write_json_atomic,
)

__all__ = [
    "check_trusted_dir",
    "clean_stale_temps",
    "ensure_dir",
    "locked",
    "move_aside",
    "read_json",
    "write_json_atomic",
]

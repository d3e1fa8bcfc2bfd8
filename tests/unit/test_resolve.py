"""Phase precedence, directly: kill switch > env pin > store > default (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.errors import ConfigurationError
from aurum_otel.flags import read_flags
from aurum_otel.resolve import StoreOrError, precedence
from aurum_otel.stores.file import STATE_FILE

BAD_URL = ConfigurationError("AURUM_STATE_URL", "ftp://x", "a file:// or redis:// URL")


class Row(NamedTuple):
    env: dict[str, str]
    store: str | tuple[Phase, Rollout] | None  # a record, None, "corrupt" or "unbuildable"
    phase: Phase
    source: str
    problem: str | None
    percent: float = 0.0


ROWS = {
    "nothing set: legacy by default": Row({}, None, Phase.LEGACY, "default", None),
    "the store's record": Row({}, (Phase.HYBRID, Rollout(percent=10)), Phase.HYBRID, "store",
                              None, 10),
    "an env pin beats the store": Row({"AURUM_MIGRATION_ORDERS_PHASE": "simplified"},
                                      (Phase.HYBRID, Rollout()), Phase.SIMPLIFIED, "env", None),
    "the kill switch beats the pin and the store": Row(
        {"AURUM_MIGRATION_ORDERS_ENABLED": "0", "AURUM_MIGRATION_ORDERS_PHASE": "simplified"},
        (Phase.SIMPLIFIED, Rollout()), Phase.LEGACY, "kill-switch", None),
    "an env percent overrides the store's rollout": Row(
        {"AURUM_MIGRATION_ORDERS_PERCENT": "50"}, (Phase.HYBRID, Rollout(percent=10)),
        Phase.HYBRID, "store", None, 50),
    "a corrupt store runs legacy, tagged": Row({}, "corrupt", Phase.LEGACY, "invalid", "state"),
    "a corrupt store under a pin keeps the pin, tagged": Row(
        {"AURUM_MIGRATION_ORDERS_PHASE": "hybrid"}, "corrupt", Phase.HYBRID, "env", "state"),
    "a store that cannot be built runs legacy": Row({}, "unbuildable", Phase.LEGACY, "invalid",
                                                    "AURUM_STATE_URL"),
    "a store that cannot be built keeps a pin": Row(
        {"AURUM_MIGRATION_ORDERS_PHASE": "simplified", "AURUM_MIGRATION_ORDERS_PERCENT": "20"},
        "unbuildable", Phase.SIMPLIFIED, "env", "AURUM_STATE_URL", 20),
    "the kill switch never asks a broken store": Row(
        {"AURUM_MIGRATION_ORDERS_ENABLED": "0"}, "unbuildable", Phase.LEGACY, "kill-switch", None),
}


def _store(tmp_path: Path, spec: Row) -> Callable[[], StoreOrError]:
    if spec.store == "unbuildable":
        return lambda: (None, BAD_URL)
    store = FileStore.in_dir(tmp_path)
    if spec.store == "corrupt":
        (tmp_path / STATE_FILE).write_text("{not json")
    elif spec.store is not None:
        phase, rollout = spec.store
        store.transition("orders", phase, rollout, actor="t", reason="t")
    return lambda: (store, None)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_phase_precedence(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in row.env.items():
        monkeypatch.setenv(variable, value)
    logged: list[tuple[Any, ...]] = []
    state = precedence("orders", read_flags("orders"), _store(tmp_path, row),
                       log_once=lambda *args: logged.append(args))
    assert (state.phase, state.source, state.problem) == (row.phase, row.source, row.problem)
    assert state.rollout.percent == row.percent
    # A problem is logged, except a corrupt record under a pin (the pin is what runs).
    assert bool(logged) == (row.problem is not None and (row.store, row.source) != ("corrupt", "env"))


def test_the_guides_kill_switch_name_for_settings(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("AURUM_USE_SIMPLIFIED_SETTINGS", "0")
    monkeypatch.setenv("AURUM_SETTINGS_MIGRATION_PHASE", "simplified")
    state = precedence("settings", read_flags("settings"), lambda: (None, BAD_URL),
                       log_once=lambda *args: None)
    assert (state.phase, state.source) == (Phase.LEGACY, "kill-switch")

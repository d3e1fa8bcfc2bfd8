"""The protocols every source and store keeps, the do-nothing bases, the old import paths, and the
layering of stores/ (backends never import the module that selects them)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, testing
from aurum_otel.stores.base import PhaseSource, PhaseSourceBase, PhaseStore, PhaseStoreBase
from aurum_otel.stores.model import MigrationRecord, Rollout, Snapshot
from tests.unit.stores.routing import which

STORES = Path(__file__).parents[3] / "aurum_otel" / "stores"


class Table(PhaseSourceBase):
    """A source of the user's own, built on the base: only location and snapshot."""

    def __init__(self, records: dict[str, MigrationRecord]) -> None:
        self.records = records

    @property
    def location(self) -> str:
        return "table"

    def snapshot(self) -> Snapshot:
        return Snapshot(dict(self.records))


def test_a_source_on_the_base_needs_only_location_and_snapshot() -> None:
    table = Table({"tabled": MigrationRecord(Phase.SIMPLIFIED)})
    assert isinstance(table, PhaseSource) and not isinstance(table, PhaseStore)
    served = which("tabled")
    # The registry adds its listener: the base takes it and does nothing.
    with testing.capture(store=table) as telemetry:
        assert served() == "simplified"
    assert telemetry.spans("migrate tabled")[0].attributes["aurum.migration.phase"] == "simplified"
    assert table.add_listener(print) is None and table.close() is None


def test_the_bases_name_what_is_missing() -> None:
    class NoSnapshot(PhaseSourceBase):
        @property
        def location(self) -> str:
            return "x"

    class NoTransition(PhaseStoreBase):
        @property
        def location(self) -> str:
            return "x"

        def snapshot(self) -> Snapshot:
            return Snapshot({})

    with pytest.raises(TypeError, match="snapshot"):
        NoSnapshot()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="transition"):
        NoTransition()  # type: ignore[abstract]


def test_the_file_store_is_a_store_whose_listeners_and_close_do_nothing(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    assert isinstance(store, PhaseStore) and isinstance(store, PhaseStoreBase)
    heard: list[str] = []
    store.add_listener(heard.append)
    store.transition("m", Phase.HYBRID, Rollout(percent=10), actor="t", reason="t")
    store.close()
    assert heard == []  # readers of a file store poll it
    record = store.snapshot().get("m")
    assert record is not None and record.phase is Phase.HYBRID  # closed, still readable


def test_the_redis_store_is_a_store() -> None:
    redis = pytest.importorskip("redis")
    from aurum_otel.stores.redis import RedisStore

    store = RedisStore(redis.Redis(port=1), start=False)
    try:
        assert isinstance(store, PhaseStore) and isinstance(store, PhaseStoreBase)
    finally:
        store.close()


def test_the_openfeature_source_is_a_read_only_source() -> None:
    pytest.importorskip("openfeature")
    from aurum_otel.stores.openfeature import OpenFeaturePhaseSource

    assert issubclass(OpenFeaturePhaseSource, PhaseSourceBase)
    assert not issubclass(OpenFeaturePhaseSource, PhaseStoreBase)


@pytest.mark.parametrize(("old", "new", "names"), [
    ("aurum_otel.store", "aurum_otel.stores.base", ["PhaseStore", "PhaseSource"]),
    ("aurum_otel.store", "aurum_otel.stores.file", ["FileStore", "STATE_FILE", "SCHEMA"]),
    ("aurum_otel.store", "aurum_otel.stores.model",
     ["MigrationRecord", "Snapshot", "Transition", "WatchState", "HISTORY_LIMIT"]),
    ("aurum_otel.store", "aurum_otel.stores.url", ["store_from_url"]),
    ("aurum_otel._files", "aurum_otel.stores.files", ["locked", "read_json", "write_json_atomic"]),
    ("aurum_otel.redis_store", "aurum_otel.stores.redis", ["RedisStore", "URL_FORM"]),
    ("aurum_otel.openfeature_source", "aurum_otel.stores.openfeature",
     ["OpenFeaturePhaseSource", "URL_FORM"]),
    ("aurum_otel.openfeature_source", "aurum_otel.stores.openfeature_overrides",
     ["OVERRIDE_MARK", "OVERRIDES_FILE", "ProviderOverrideWarning"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_the_old_import_paths_name_the_same_objects(old: str, new: str, names: list[str]) -> None:
    if "redis" in new:
        pytest.importorskip("redis")
    if "openfeature" in new:
        pytest.importorskip("openfeature")
    before, after = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(before, name) is getattr(after, name), name


def _imports(path: Path) -> set[str]:
    """The aurum_otel modules ``path`` imports, inside functions too (TYPE_CHECKING aside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aurum_otel"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aurum_otel"):
            found.add(node.module)
    return found


def test_only_url_knows_the_backends_and_no_store_module_climbs_back() -> None:
    allowed_outside = {"aurum_otel.errors", "aurum_otel.phase", "aurum_otel",
                       "aurum_otel.semconv", "aurum_otel.telemetry.semconv"}
    backends = {"aurum_otel.stores.redis", "aurum_otel.stores.openfeature"}
    graph = {}
    for path in sorted(STORES.glob("*.py")):
        module = f"aurum_otel.stores.{path.stem}"
        imported = _imports(path)
        graph[module] = {m for m in imported if m.startswith("aurum_otel.stores.")}
        outside = {m for m in imported if not m.startswith("aurum_otel.stores")}
        assert outside <= allowed_outside, (module, outside - allowed_outside)
        if path.stem != "url":
            assert "aurum_otel.stores.url" not in imported, module
            assert not (imported & backends) or path.stem.startswith(("redis", "openfeature")), module
    assert graph["aurum_otel.stores.url"] >= backends
    for module in ("aurum_otel.stores.base", "aurum_otel.stores.model", "aurum_otel.stores.files"):
        assert not graph[module] - {"aurum_otel.stores.model"}, (module, graph[module])

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    assert [m for m in graph if reaches(m, m, {m})] == []

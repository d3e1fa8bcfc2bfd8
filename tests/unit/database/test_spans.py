"""database.spans: the statement spans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aurum_otel import Phase, Rollout, testing
from tests.unit.database.fakes import (
    set_phase,
)


def test_db_spans_are_children_of_the_migration_span(routed: Any, tmp_path: Path) -> None:
    with testing.capture(state_dir=tmp_path) as telemetry:
        set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
        rows = routed.query("SELECT id, name FROM curves WHERE name <> 'c9' ORDER BY id")
        telemetry.wait_for_shadows()
        assert rows == [(0, "c0"), (1, "c1"), (2, "c2"), (3, "c3")]
        (migrate,) = telemetry.spans("migrate database")
        (shadow,) = telemetry.spans("shadow database")
        db_spans = telemetry.spans("SELECT iceberg.market")
    assert len(db_spans) == 2
    parents = {span.parent.span_id for span in db_spans if span.parent is not None}
    assert parents == {migrate.context.span_id, shadow.context.span_id}
    attributes = dict(db_spans[0].attributes or {})
    assert attributes["db.system.name"] == "sqlite"
    assert attributes["db.namespace"] == "iceberg.market"
    assert attributes["db.operation.name"] == "SELECT"
    assert attributes["db.query.text"] == "SELECT id, name FROM curves WHERE name <> ? ORDER BY id"
    assert attributes["db.response.returned_rows"] == 4
    assert (shadow.attributes or {})["aurum.migration.comparison"] == "match"

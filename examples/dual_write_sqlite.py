"""Migrate rows between two sqlite databases with aurum-otel's dual writes.

LaunchDarkly's migration stages, on aurum-otel's phases (``dual_write=True`` on the writer):

    stage        phase / rollout                      writes              reads
    off          legacy                               old                 old
    dual-write   hybrid, percent 0,   compare 0       old, then new       old
    shadow       hybrid, percent 0,   compare 100     old, then new       old, new compared
    live         hybrid, percent 100, compare 100     new, then old       new, old compared
    ramp-down    simplified                           new                 new
    complete     simplified, legacy code removed      new                 new

Run it: ``python examples/dual_write_sqlite.py``. It walks the stages with a backfill between
dual-write and shadow, and checks at each stage that no caller saw an error and both stores agree
where they must.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from aurum_otel import FileStore, Phase, Rollout, migrated, testing


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)")
    return db


def build(old: sqlite3.Connection, new: sqlite3.Connection):  # type: ignore[no-untyped-def]
    @migrated("orders", dual_write=True)
    def save_order(order_id: int, total: float) -> int:
        old.execute("INSERT OR REPLACE INTO orders VALUES (?, ?)", (order_id, total))
        return order_id

    @save_order.simplified
    def _save_order_new(order_id: int, total: float) -> int:
        new.execute("INSERT OR REPLACE INTO orders VALUES (?, ?)", (order_id, total))
        return order_id

    @migrated("orders")
    def get_order(order_id: int) -> tuple[int, float] | None:
        return old.execute("SELECT id, total FROM orders WHERE id = ?", (order_id,)).fetchone()

    @get_order.simplified
    def _get_order_new(order_id: int) -> tuple[int, float] | None:
        return new.execute("SELECT id, total FROM orders WHERE id = ?", (order_id,)).fetchone()

    return save_order, get_order


STAGES = (
    ("off", Phase.LEGACY, Rollout()),
    ("dual-write", Phase.HYBRID, Rollout(percent=0, compare=0)),
    ("shadow", Phase.HYBRID, Rollout(percent=0, compare=100)),
    ("live", Phase.HYBRID, Rollout(percent=100, compare=100)),
    ("ramp-down", Phase.SIMPLIFIED, Rollout()),
)


def ids(db: sqlite3.Connection) -> set[int]:
    return {row[0] for row in db.execute("SELECT id FROM orders")}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="aurum-dual-write-"))
    old, new = open_db(work / "old.db"), open_db(work / "new.db")
    save_order, get_order = build(old, new)
    store = FileStore.in_dir(work / "state")
    next_id = 1
    with testing.capture(store=store) as telemetry:
        for stage, phase, rollout in STAGES:
            store.transition("orders", phase, rollout, actor="example", reason=stage)
            written = list(range(next_id, next_id + 20))
            for order_id in written:
                save_order(order_id, order_id * 1.5)
                assert get_order(order_id) == (order_id, order_id * 1.5)
            next_id += 20
            telemetry.wait_for_shadows()
            in_old, in_new = ids(old), ids(new)
            if stage == "dual-write":  # backfill what only the old store has
                rows = old.execute("SELECT id, total FROM orders").fetchall()
                new.executemany("INSERT OR IGNORE INTO orders VALUES (?, ?)", rows)
                in_new = ids(new)
            both = stage in ("dual-write", "shadow", "live")
            assert set(written) <= (in_old & in_new if both else
                                    (in_old if stage == "off" else in_new)), stage
            mismatches = telemetry.counts("aurum.migration.comparisons", comparison="mismatch")
            print(f"{stage:<11} {phase.value:<10} old {len(in_old):>3} rows, new {len(in_new):>3}"
                  f" rows, read mismatches so far {mismatches:g}")
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 0
    print(f"done: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shadow pairs and routing keys leave the process (issue 16): the pair counter by which side
failed and which was slower, the per-pair duration ratio as a cumulative counter with ``le`` (what
PromQL's ``histogram_quantile`` reads), and the distinct routing keys per side of the step."""

from __future__ import annotations

import time
from pathlib import Path

from aurum_otel import FileStore, Phase, Rollout, migrated, routing_key, semconv, testing


def _step(tmp_path: Path, name: str, percent: float = 0, compare: float = 100) -> None:
    FileStore.in_dir(tmp_path).transition(name, Phase.HYBRID,
                                          Rollout(percent=percent, compare=compare),
                                          actor="t", reason="t")


def test_pairs_are_exported_by_failing_side_and_slower_side(tmp_path: Path) -> None:
    _step(tmp_path, "paired")

    @migrated("paired")
    def price(i: int) -> int:
        time.sleep(0.001)
        if i % 10 == 0:
            raise ValueError("both fail on these")
        return i

    @price.simplified
    def _price(i: int) -> int:
        time.sleep(0.004)
        if i % 10 in (0, 3):  # and simplified on another tenth
            raise ValueError("simplified fails")
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        for i in range(20):
            try:
                price(i)
            except ValueError:
                pass
        telemetry.wait_for_shadows()
        pairs = {(a[semconv.ATTR_FAILED], a[semconv.ATTR_SLOWER]): p.value
                 for a, p in telemetry.points(semconv.METRIC_PAIRS)
                 if a[semconv.ATTR_NAME] == "paired"}
        ratios = {a[semconv.ATTR_LE]: p.value
                  for a, p in telemetry.points(semconv.METRIC_PAIR_RATIOS)
                  if a[semconv.ATTR_NAME] == "paired"}
    # every combination is a series (zero where nothing happened), so PromQL's sums exist
    assert set(pairs) == {(f, s) for f in ("none", "legacy", "simplified", "both")
                          for s in ("simplified", "legacy", "tie")}
    assert sum(pairs.values()) == 20
    assert sum(v for (f, _), v in pairs.items() if f == "both") == 2
    assert sum(v for (f, _), v in pairs.items() if f == "simplified") == 2
    assert sum(v for (f, _), v in pairs.items() if f == "legacy") == 0
    assert sum(v for (_, s), v in pairs.items() if s == "simplified") >= 18
    # cumulative, ascending bounds as Prometheus spells them, the last +Inf holding every pair
    assert list(ratios) == ["0.25", "0.5", "0.67", "0.8", "0.9", "1", "1.1", "1.25", "1.5", "2",
                            "3", "4", "+Inf"]
    counts = list(ratios.values())
    assert counts == sorted(counts) and counts[-1] == 20
    assert ratios["1"] <= 2  # about 4x slower: next to no pair at or under 1


def test_a_migration_without_pairs_exports_no_pair_series(tmp_path: Path) -> None:
    _step(tmp_path, "unshadowed", compare=0)

    @migrated("unshadowed")
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        work(1)
        assert telemetry.points(semconv.METRIC_PAIRS) == []
        assert telemetry.points(semconv.METRIC_PAIR_RATIOS) == []


def test_routing_keys_gauge_counts_distinct_keys_per_side(tmp_path: Path) -> None:
    _step(tmp_path, "keyed", percent=50, compare=0)

    @migrated("keyed")
    def work(i: int) -> int:
        return i

    @work.simplified
    def _work(i: int) -> int:
        return i

    with testing.capture(state_dir=tmp_path) as telemetry:
        for i in range(200):
            with routing_key(f"user-{i % 40}"):  # 40 distinct keys, each called 5 times
                work(i)
        keys = {a[semconv.ATTR_IMPLEMENTATION]: p.value
                for a, p in telemetry.points(semconv.METRIC_ROUTING_KEYS)
                if a[semconv.ATTR_NAME] == "keyed"}
    assert set(keys) == {"legacy", "simplified"}
    assert keys["legacy"] + keys["simplified"] == 40
    assert 5 <= keys["simplified"] <= 35  # 50 %: both sides hold keys

"""The OpenFeature source's pure parts: which writes count as rollbacks, and the flag keys."""

from __future__ import annotations

import pytest

pytest.importorskip("openfeature")

from aurum_otel import Phase, Rollout
from aurum_otel.stores.model import MigrationRecord
from aurum_otel.stores.openfeature_flags import derive, key_patterns
from aurum_otel.stores.openfeature_overrides import is_rollback

HYBRID_50 = MigrationRecord(Phase.HYBRID, Rollout(percent=50))


@pytest.mark.parametrize(("current", "to", "rollout", "rollback"), [
    (HYBRID_50, Phase.LEGACY, Rollout(), True),
    (HYBRID_50, Phase.HYBRID, Rollout(percent=10), True),
    (HYBRID_50, Phase.HYBRID, Rollout(percent=50), True),
    (HYBRID_50, Phase.HYBRID, Rollout(percent=60), False),
    (HYBRID_50, Phase.SIMPLIFIED, Rollout(), False),
    (MigrationRecord(Phase.SIMPLIFIED), Phase.HYBRID, Rollout(percent=100), True),
    (MigrationRecord(), Phase.LEGACY, Rollout(), True),
    (MigrationRecord(), Phase.HYBRID, Rollout(), False),
], ids=["to-legacy", "lower-percent", "same-percent", "higher-percent", "to-simplified",
        "simplified-to-hybrid", "legacy-to-legacy", "legacy-to-hybrid"])
def test_only_a_step_back_is_a_rollback(current: MigrationRecord, to: Phase, rollout: Rollout,
                                        rollback: bool) -> None:
    assert is_rollback(current, to, rollout) is rollback


@pytest.mark.parametrize(("template", "given", "key"), [
    ("aurum.migration.{name}.phase", None, "aurum.migration.{name}.percent"),
    ("{name}-phase", None, "{name}-phase.percent"),
    ("aurum.migration.{name}.phase", "pct.{name}", "pct.{name}"),
    ("aurum.migration.{name}.phase", "", ""),
])
def test_rollout_keys_follow_the_phase_key(template: str, given: str | None, key: str) -> None:
    assert derive(template, given, "percent") == key


def test_a_changed_flag_key_names_its_migration() -> None:
    patterns = key_patterns(["aurum.migration.{name}.phase", "aurum.migration.{name}.percent"])
    found = [m.group("name") for key in ("aurum.migration.orders.percent", "other.flag")
             for p in patterns if (m := p.fullmatch(key))]
    assert found == ["orders"]

"""A health rule is one class: its check, its PromQL and its YAML schema (issue 14).

A toy rule defined here, and nowhere else, is loaded from YAML, evaluated in process and rendered
by ``aurum-migrate rules``, with policy.py and promrules.py untouched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aurum_otel.cli.app import cli
from aurum_otel.errors import ConfigurationError
from aurum_otel.health import HealthPolicy, SideStats, Status, WindowStats, rules
from aurum_otel.health.promql import RecordedNames, side
from aurum_otel.health.verdict import RuleResult
from tests.unit.health.fixed import Fixed

YAML = """
window: 600
rules:
  - error_rate: {}
  - simplified_share: {min_share: 0.25}
"""


@pytest.fixture
def toy_rule(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[rules.Rule]]:
    """Defines the toy rule for one test (the registry of rule kinds is restored after)."""
    monkeypatch.setattr(rules, "_KINDS", dict(rules._KINDS))

    @dataclass(frozen=True)
    class SimplifiedShareRule(rules.Rule):
        """Simplified serves at least ``min_share`` of the calls."""

        min_share: float = 0.1
        min_samples: int = rules.DEFAULT_MIN_SAMPLES
        name = "simplified_share"
        alert_name = "AurumMigrationSimplifiedShare"

        @classmethod
        def validate(cls, options: Mapping[str, float], where: str) -> None:
            if options.get("min_share", 0.1) > 1:
                raise ConfigurationError(f"{where}.min_share", options["min_share"],
                                         "a share from 0 to 1")

        def check(self, stats: WindowStats) -> list[RuleResult]:
            total = stats.legacy.calls + stats.simplified.calls
            share = stats.simplified.calls / total if total else 0.0
            status = Status.HEALTHY if share >= self.min_share else Status.UNHEALTHY
            return [RuleResult(self.name, status, f"simplified share {share:.0%}", share,
                               self.min_share, stats.window)]

        def alert(self, names: RecordedNames) -> tuple[str, str, str]:
            share = (f"{side(names.calls, 'simplified')} / ignoring(aurum_migration_implementation)"
                     f" group_left() {side(names.calls, 'legacy')}")
            return (self.alert_name, f"({share}) < {self.min_share:g}",
                    f"simplified share below {self.min_share:g}")

    yield SimplifiedShareRule


def _stats(legacy: float, simplified: float) -> WindowStats:
    return WindowStats("orders", 600, legacy=SideStats(legacy, 0), simplified=SideStats(simplified, 0))


def test_a_rule_defined_elsewhere_loads_from_yaml_and_judges_in_process(
    toy_rule: type[rules.Rule],
) -> None:
    policy = HealthPolicy.from_yaml(YAML)
    toy = policy.rules.rules[1]  # type: ignore[attr-defined]
    assert isinstance(toy, toy_rule) and toy.min_share == 0.25  # type: ignore[attr-defined]
    unhealthy = policy.evaluate("orders", Fixed(_stats(legacy=900, simplified=100)))
    assert unhealthy.status is Status.UNHEALTHY
    assert unhealthy.reasons == ["simplified_share: simplified share 10%"]
    healthy = policy.evaluate("orders", Fixed(_stats(legacy=500, simplified=500)))
    assert [r.status for r in healthy.results if r.rule == "simplified_share"] == [Status.HEALTHY]


def test_its_yaml_schema_is_its_fields(toy_rule: type[rules.Rule]) -> None:
    with pytest.raises(ConfigurationError, match=r"\['min_samples', 'min_share'\]"):
        HealthPolicy.from_yaml("rules: [{simplified_share: {max_share: 1}}]")
    with pytest.raises(ConfigurationError, match="min_share.*a share from 0 to 1"):
        HealthPolicy.from_yaml("rules: [{simplified_share: {min_share: 2}}]")
    with pytest.raises(ConfigurationError,
                       match="mismatch_rate, metric, paired, split, simplified_share, all, any"):
        HealthPolicy.from_yaml("rules: [{nonsense: {}}]")


def test_aurum_migrate_rules_renders_it(toy_rule: type[rules.Rule], tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(YAML)
    result = CliRunner().invoke(cli, ["rules", "--rules", str(path)])
    assert result.exit_code == 0, result.output
    alerts = {a["alert"]: a for a in yaml.safe_load(result.output)["groups"][1]["rules"]}
    assert set(alerts) == {"AurumMigrationErrorRate", "AurumMigrationSimplifiedShare"}
    assert alerts["AurumMigrationSimplifiedShare"]["expr"] == (
        '(aurum:migration_calls:increase10m{aurum_migration_implementation="simplified"} / '
        'ignoring(aurum_migration_implementation) group_left() '
        'aurum:migration_calls:increase10m{aurum_migration_implementation="legacy"}) < 0.25')

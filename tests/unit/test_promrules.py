"""The generated Prometheus rules: in sync with the health rules, valid, and right on known data.

``collector-config/aurum-rules.yml`` is what ``aurum-migrate rules`` prints; ``promtool check
rules`` accepts it; ``promtool test rules collector-config/aurum-rules.test.yml`` passes; rules
generated from weaker policies fail those tests (so they constrain something); and the Python
health rules, evaluated on the very input series of those tests, condemn exactly the migrations
whose alerts fire there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurum_otel import semconv
from aurum_otel.health import (
    ErrorRateRule,
    HealthPolicy,
    LatencyRule,
    MismatchRule,
    PairedRule,
    PairStats,
    SideStats,
    Status,
    WindowStats,
    default_rules,
)
from aurum_otel.health.promrules import generate_rules, with_paired

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "collector-config"
RULES = CONFIG / "aurum-rules.yml"
RULE_TESTS = CONFIG / "aurum-rules.test.yml"
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists()
                                         else None)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")

ALERTS = {"error_rate": "AurumMigrationErrorRate", "latency": "AurumMigrationLatency",
          "mismatch_rate": "AurumMigrationMismatch", "paired:errors": "AurumMigrationPaired",
          "paired:latency": "AurumMigrationPaired"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, check=False)


# ------------------------------------------------------------------------------ in sync


def test_checked_in_rules_are_what_the_generator_writes() -> None:
    assert RULES.read_text(encoding="utf-8") == generate_rules(), (
        "collector-config/aurum-rules.yml is out of date: run "
        "`aurum-migrate rules -o collector-config/aurum-rules.yml`")


def test_cli_rules_output_and_check_agree_with_the_file() -> None:
    printed = subprocess.run([sys.executable, "-m", "aurum_otel.cli", "rules"], capture_output=True,
                             text=True, timeout=60, check=False, cwd=ROOT)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == RULES.read_text(encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "aurum_otel.cli", "rules", "--check", str(RULES)],
                           capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    # A different policy (here: a 10-minute window) is reported as out of date, exit code 3.
    stale = subprocess.run(
        [sys.executable, "-m", "aurum_otel.cli", "rules", "--window", "600", "--check", str(RULES)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert stale.returncode == 3
    assert "out of date" in stale.stderr


def test_any_change_to_the_health_rules_changes_the_generated_file() -> None:
    current = generate_rules()
    for policy in (
        HealthPolicy(default_rules(min_samples=21)),
        HealthPolicy(ErrorRateRule(max_rate=0.04) & LatencyRule() & MismatchRule()),
        HealthPolicy(ErrorRateRule() & LatencyRule(max_ratio=2.0) & MismatchRule()),
        HealthPolicy(ErrorRateRule() & LatencyRule() & MismatchRule(max_rate=0.01)),
        HealthPolicy(window=600),
        HealthPolicy(default_rules() & PairedRule(max_ratio=2.0)),
        HealthPolicy(default_rules() & PairedRule(confidence=0.999)),
    ):
        assert generate_rules(policy) != current


def test_the_built_in_rules_carry_the_paired_alert_for_shadow_steps() -> None:
    """A shadow step adds the paired rule to its rules; its alert fires only on shadow pairs.
    A policy of its own gets exactly its rules' alerts."""
    def alerts(policy: HealthPolicy) -> list[str]:
        document = yaml.safe_load(generate_rules(policy))
        return [rule["alert"] for rule in document["groups"][1]["rules"]]

    assert alerts(HealthPolicy()).count("AurumMigrationPaired") == 1
    assert alerts(HealthPolicy(window=600)).count("AurumMigrationPaired") == 1
    assert alerts(HealthPolicy(default_rules() & PairedRule())) == alerts(HealthPolicy())
    assert "AurumMigrationPaired" not in alerts(HealthPolicy(ErrorRateRule() & LatencyRule()))
    assert "> 2)" in generate_rules(HealthPolicy(default_rules() & PairedRule(max_ratio=2)))
    assert ">= 30" in generate_rules(HealthPolicy(default_rules(min_samples=30)))
    assert with_paired(HealthPolicy(PairedRule())) == HealthPolicy(PairedRule())


# ------------------------------------------------------------------------------ promtool


@needs_promtool
def test_promtool_check_rules_accepts_the_file() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 26 rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _failing_groups(output: str) -> set[str]:
    return set(re.findall(r"^\s*name: (.+?),\s*$", output, re.MULTILINE))


@needs_promtool
@pytest.mark.parametrize(("policy", "must_fail"), [
    # No significance gate: noise between equally good implementations would fire.
    (HealthPolicy(ErrorRateRule(confidence=0) & LatencyRule() & MismatchRule()),
     {"noisy but within significance fires nothing"}),
    # Judging on 5 samples: a handful of failures would fire.
    (HealthPolicy(default_rules(min_samples=5)), {"too few samples fire nothing"}),
    # Thresholds so loose that nothing fires.
    (HealthPolicy(ErrorRateRule(max_rate=0.5, max_increase=0.5) & LatencyRule(max_ratio=50)
                  & MismatchRule(max_rate=0.5)),
     {"error spike fires AurumMigrationErrorRate", "an error spike fires only after 30s",
      "simplified significantly worse than legacy fires AurumMigrationErrorRate",
      "slow simplified fires AurumMigrationLatency",
      "shadow mismatches fire AurumMigrationMismatch"}),
    # The paired rule without its significance gate, on 5 pairs, or with loose thresholds.
    (HealthPolicy(default_rules() & PairedRule(confidence=0.5)),
     {"paired noise within significance fires nothing"}),
    (HealthPolicy(default_rules() & PairedRule(min_samples=5)), {"too few samples fire nothing"}),
    (HealthPolicy(default_rules() & PairedRule(max_increase=0.5, max_ratio=50)),
     {"simplified failing alone on the same inputs fires AurumMigrationPaired",
      "slower simplified on the same inputs fires AurumMigrationPaired"}),
], ids=["no-significance", "min-samples-5", "loose-thresholds", "paired-no-significance",
        "paired-min-samples-5", "paired-loose-thresholds"])
def test_promtool_unit_tests_reject_weaker_rules(tmp_path: Path, policy: HealthPolicy,
                                                 must_fail: set[str]) -> None:
    (tmp_path / "aurum-rules.yml").write_text(generate_rules(policy), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / "aurum-rules.test.yml")
    result = promtool("test", "rules", "aurum-rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0, "the promtool tests did not notice the weaker rules"
    failed = _failing_groups(result.stdout + result.stderr)
    assert must_fail <= failed, result.stdout


# ------------------------------------------------------- the Python rules on the same data


def expand(values: str) -> list[float]:
    """promtool's series notation (the subset used here): ``a+bxn``, ``a-bxn``, ``axn``, ``a``."""
    out: list[float] = []
    for token in values.split():
        match = re.fullmatch(r"(-?[\d.]+)(?:([+-])([\d.]+))?(?:x(\d+))?", token)
        assert match, f"unsupported series notation {token!r}"
        start, sign, step, times = match.groups()
        delta = 0.0 if step is None else float(step) * (-1 if sign == "-" else 1)
        out.extend(float(start) + delta * i for i in range(int(times or 0) + 1))
    return out


def parse_series(series: str) -> tuple[str, dict[str, str]]:
    name, _, rest = series.partition("{")
    labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return name, labels


def seconds(duration: str) -> int:
    total = 0
    for amount, unit in re.findall(r"(\d+)([hms])", duration):
        total += int(amount) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def window_stats(group: dict[str, Any], at: int, window: int = 300) -> dict[str, WindowStats]:
    """Each migration's figures over ``window`` seconds at ``at``, as Prometheus 2.x computes them
    (its range includes both ends, so with samples on the window's edges increase() is exact)."""
    interval = seconds(group["interval"])
    end, begin = at // interval, (at - window) // interval
    calls: dict[tuple[str, str], float] = defaultdict(float)
    errors: dict[tuple[str, str], float] = defaultdict(float)
    buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    comparisons: dict[tuple[str, str], float] = defaultdict(float)
    pairs: dict[tuple[str, str, str], float] = defaultdict(float)
    ratios: dict[str, dict[float, float]] = defaultdict(dict)
    names: set[str] = set()
    for item in group["input_series"]:
        metric, labels = parse_series(item["series"])
        samples = expand(item["values"])
        increase = samples[end] - samples[max(begin, 0)]
        name = labels["aurum_migration_name"]
        names.add(name)
        impl = labels.get("aurum_migration_implementation", "")
        if metric == semconv.PROM_CALLS:
            calls[name, impl] += increase
            if labels["aurum_migration_outcome"] == "error":
                errors[name, impl] += increase
        elif metric == semconv.PROM_DURATION_BUCKET:
            buckets[name, impl][float(labels["le"])] += increase
        elif metric == semconv.PROM_COMPARISONS:
            comparisons[name, labels["aurum_migration_comparison"]] += increase
        elif metric == semconv.PROM_PAIRS:
            pairs[name, labels[semconv.PROM_LABEL_FAILED], labels[semconv.PROM_LABEL_SLOWER]] += (
                increase)
        elif metric == semconv.PROM_PAIR_RATIOS:
            ratios[name][float(labels["le"])] = increase

    def side(name: str, impl: str) -> SideStats:
        cumulative = tuple(sorted(buckets[name, impl].items())) if (name, impl) in buckets else ()
        return SideStats(calls[name, impl], errors[name, impl], cumulative)

    def paired(name: str) -> PairStats | None:
        mine = {key[1:]: value for key, value in pairs.items() if key[0] == name}
        if not sum(mine.values()):
            return None

        def where(index: int, value: str) -> float:
            return sum(v for k, v in mine.items() if k[index] == value)

        return PairStats(sum(mine.values()), where(0, "legacy"), where(0, "simplified"),
                         where(1, "simplified"), where(1, "legacy"),
                         tuple(sorted(ratios[name].items())))

    return {name: WindowStats(name, window, legacy=side(name, "legacy"),
                              simplified=side(name, "simplified"),
                              matches=comparisons[name, "match"],
                              mismatches=comparisons[name, "mismatch"], source="promtool series",
                              pairs=paired(name))
            for name in names}


def _groups() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    groups: list[dict[str, Any]] = document["tests"]
    return groups


# Where nothing fires, why: per rule, what the Python evaluator concludes.
EXPECTED_PYTHON_RESULTS = {
    "healthy traffic fires nothing": dict.fromkeys(ALERTS, Status.HEALTHY),
    "too few samples fire nothing": dict.fromkeys(ALERTS, Status.INCONCLUSIVE),
    "noisy but within significance fires nothing": {"error_rate": Status.HEALTHY},
    "paired noise within significance fires nothing": {"paired:errors": Status.HEALTHY,
                                                       "paired:latency": Status.HEALTHY},
}


@pytest.mark.parametrize("group", _groups(), ids=lambda g: g["name"])
def test_python_rules_agree_with_the_alerts_on_the_same_series(group: dict[str, Any]) -> None:
    last = max(seconds(t["eval_time"]) for t in group["alert_rule_test"])
    firing: set[tuple[str, str]] = set()
    for case in group["alert_rule_test"]:
        if seconds(case["eval_time"]) == last:
            for alert in case["exp_alerts"]:
                firing.add((alert["exp_labels"]["aurum_migration_name"], case["alertname"]))
    policy = with_paired(HealthPolicy())  # the policy the checked-in rules are generated from
    for name, stats in window_stats(group, last, int(policy.window)).items():
        status, results = policy.rules.evaluate(stats)
        condemned = {(name, ALERTS[r.rule]) for r in results if r.status is Status.UNHEALTHY}
        expected = {item for item in firing if item[0] == name}
        assert condemned == expected, [f"{r.rule}: {r.status.value}: {r.message}" for r in results]
        assert (status is Status.UNHEALTHY) == bool(expected)
        for rule, wanted in EXPECTED_PYTHON_RESULTS.get(group["name"], {}).items():
            found = next(r for r in results if r.rule == rule)
            assert found.status is wanted, found.message

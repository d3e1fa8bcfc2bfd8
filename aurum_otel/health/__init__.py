"""Health: rules, verdicts and the sources they are evaluated on."""

from aurum_otel.health.inprocess import HealthReader
from aurum_otel.health.metric import MetricRule
from aurum_otel.health.paired import PairedRule
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.rules import (
    AllOf,
    AnyOf,
    ErrorRateRule,
    LatencyRule,
    MismatchRule,
    Rule,
    default_rules,
    rule_kinds,
)
from aurum_otel.health.split import SplitRule
from aurum_otel.health.stats import (
    ConfiguredSplit,
    HealthSource,
    PairStats,
    SideStats,
    SplitStats,
    WindowStats,
    histogram_quantile,
)
from aurum_otel.health.verdict import RuleResult, Status, Verdict

__all__ = [
    "AllOf",
    "AnyOf",
    "ConfiguredSplit",
    "ErrorRateRule",
    "HealthPolicy",
    "HealthReader",
    "HealthSource",
    "LatencyRule",
    "MetricRule",
    "MismatchRule",
    "PairStats",
    "PairedRule",
    "Rule",
    "RuleResult",
    "SideStats",
    "SplitRule",
    "SplitStats",
    "Status",
    "Verdict",
    "WindowStats",
    "default_rules",
    "histogram_quantile",
    "rule_kinds",
]

"""Custom metric rules: any PromQL expression held to a threshold (Flagger's metric templates,
Argo Rollouts' analysis).

A :class:`MetricRule` measures its ``query`` once every ``interval`` seconds over the window (a
PromQL subquery, so one instant query answers for the whole window and the generated alert is
the very same expression) and counts the measurements that break the threshold: ``direction:
max`` means the value must stay at most ``threshold``, ``min`` at least. More than
``failure_limit`` breaches is unhealthy; otherwise more than ``inconclusive_limit`` missing
measurements (no value at that step) is inconclusive; otherwise healthy. The query's result is
matched to a migration by its ``aurum_migration_name`` label (a query without that label judges
every migration alike).

``dry_run: true`` evaluates, records and shows the rule, marked ``dry_run``, and never lets it
decide a verdict: composites leave it out of their status, and its alert carries
``aurum_rollback="false"``.

Only a Prometheus-compatible source runs PromQL: the in-process and file sources answer
inconclusive, "needs Prometheus".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from aurum_otel.errors import ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.promql import RecordedNames
from aurum_otel.health.rules import Rule
from aurum_otel.health.stats import WindowStats
from aurum_otel.health.verdict import RuleResult, Status

_IDENTIFIER = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def subquery(expression: str, breach: str, window: float, interval: float) -> str:
    """How many of the window's measurements (one per ``interval``) satisfy ``breach``
    (``""``: how many had a value at all).

    The range is a second short of the window: Prometheus 2 includes both ends of a range, so a
    full window would hold one measurement more than ``window / interval`` (Prometheus 3 leaves
    the start out); a second short holds the same count in both."""
    inner = f"({expression}) {breach}".strip()
    return (f"count_over_time(({inner})[{promql.duration(max(window - 1, 1))}:"
            f"{promql.duration(interval)}])")


@dataclass(frozen=True)
class MetricRule(Rule):
    """A custom PromQL metric held to a threshold, with failure and inconclusive limits."""

    metric: str = ""
    query: str = ""
    threshold: float = 0.0
    direction: str = "max"
    interval: float = 60.0
    failure_limit: int = 0
    inconclusive_limit: int = 0
    dry_run: bool = False
    window: float = 0.0  # seconds measured; 0: the policy's window
    name = "metric"
    alert_name = "AurumMigrationMetric"
    signed: ClassVar[frozenset[str]] = frozenset({"threshold"})

    def __post_init__(self) -> None:
        where = f"rules: metric {self.metric or '<unnamed>'}"
        if not _IDENTIFIER.fullmatch(self.metric):
            raise ConfigurationError(f"{where}.metric", self.metric,
                                     "a name of letters, digits and _ (e.g. checkout_p99)")
        if not self.query.strip():
            raise ConfigurationError(f"{where}.query", self.query, "a PromQL expression")
        if self.direction not in ("max", "min"):
            raise ConfigurationError(f"{where}.direction", self.direction,
                                     "max (stay at most threshold) or min (at least)")
        if not (math.isfinite(self.interval) and self.interval >= 1):
            raise ConfigurationError(f"{where}.interval", self.interval, "seconds >= 1")

    @property
    def acts(self) -> bool:
        return not self.dry_run

    @property
    def breach(self) -> str:
        return f"{'>' if self.direction == 'max' else '<'} {self.threshold:g}"

    def labels(self) -> dict[str, str]:
        if self.dry_run:
            return {"severity": "info", "aurum_rollback": "false", "aurum_dry_run": "true",
                    "aurum_metric": self.metric}
        return {**super().labels(), "aurum_metric": self.metric}

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        window = self.window or names.seconds
        expr = (f"{subquery(self.query, self.breach, window, self.interval)}"
                f" > {self.failure_limit}")
        mode = " (dry run: never acts)" if self.dry_run else ""
        return (f"{self.alert_name}_{self.metric}", expr,
                f"{self.metric} {self.breach} in more than {self.failure_limit} of the "
                f"measurements every {self.interval:g} s{mode}")

    def check(self, stats: WindowStats) -> list[RuleResult]:
        window = self.window or stats.window
        expected = max(int(window // self.interval), 1)
        name = f"metric:{self.metric}"

        def result(status: Status, message: str, value: float | None, query: str | None,
                   samples: dict[str, float] | None = None) -> RuleResult:
            return RuleResult(name, status, message, value, self.threshold, window,
                              samples or {}, query, dry_run=self.dry_run)

        if stats.metrics is None:
            return [result(Status.INCONCLUSIVE,
                           f"needs Prometheus: {stats.source} does not run PromQL "
                           f"({self.query})", None, self.query)]
        measured, breaches, query = stats.metrics.measurements(self.query, window,
                                                               self.interval, self.breach)
        missing = max(expected - measured, 0.0)
        samples = {"measurements": measured, "breaches": breaches, "missing": missing}
        figures = (f"{breaches:g} of {measured:g} measurements every {self.interval:g} s "
                   f"{self.breach} ({missing:g} missing of {expected})")
        if breaches > self.failure_limit:
            return [result(Status.UNHEALTHY,
                           f"{figures}: above the failure limit {self.failure_limit}",
                           breaches, query, samples)]
        if missing > self.inconclusive_limit:
            return [result(Status.INCONCLUSIVE,
                           f"{figures}: above the inconclusive limit {self.inconclusive_limit}",
                           breaches, query, samples)]
        return [result(Status.HEALTHY, f"{figures}: within the limits", breaches, query, samples)]


class _Querying(Protocol):
    def query(self, expression: str) -> list[dict[str, Any]]: ...


class Measurements:
    """A custom metric's measurements over a window, by PromQL subqueries (Prometheus)."""

    def __init__(self, source: _Querying, migration: str) -> None:
        self._source, self._migration = source, migration

    def measurements(self, expression: str, window: float, interval: float,
                     breach: str) -> tuple[float, float, str]:
        counted = subquery(expression, "", window, interval)
        breached = subquery(expression, breach, window, interval)
        return self._mine(counted), self._mine(breached), breached

    def _mine(self, expression: str) -> float:
        samples = self._source.query(expression)
        return _for_migration(samples, self._migration)


def _for_migration(samples: list[dict[str, Any]], migration: str) -> float:
    """The value of ``migration``'s series (by its name label), or of the only series when the
    query keeps no name label; 0 when there is none."""
    ours = [s["value"] for s in samples if s["metric"].get(promql.NAME) == migration]
    if ours:
        return float(max(ours))
    unnamed = [s["value"] for s in samples if promql.NAME not in s["metric"]]
    return float(max(unnamed)) if unnamed else 0.0


"""Custom metric rules (issue 16.3): any PromQL with a threshold and a direction, failure and
inconclusive limits, dry runs; loaded from YAML, run by the Prometheus source, generated as an
alert, and the same answer from both on the same series (``promtool test rules``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from aurum_otel import ConfigurationError
from aurum_otel.health import (
    HealthPolicy,
    MetricRule,
    SideStats,
    Status,
    WindowStats,
)
from aurum_otel.health.metric import subquery
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.health.promrules import generate_rules
from tests.unit.health.promtool import firing, needs_promtool, run_rule_tests

QUERY = "max by (aurum_migration_name) (checkout_latency_seconds)"
YAML = f"""
window: 300
rules:
  - metric:
      metric: checkout_latency
      query: '{QUERY}'
      threshold: 0.5
      direction: max
      interval: 60
      failure_limit: 1
      inconclusive_limit: 1
  - metric: {{metric: queue_depth_floor, query: 'min(queue_depth)', threshold: 3,
              direction: min, dry_run: true}}
"""


def test_a_metric_rule_loads_from_yaml_with_every_field() -> None:
    first, second = HealthPolicy.from_yaml(YAML).rules.rules  # type: ignore[attr-defined]
    assert first == MetricRule(metric="checkout_latency", query=QUERY, threshold=0.5,
                               interval=60, failure_limit=1, inconclusive_limit=1)
    assert second.dry_run and second.direction == "min" and not second.acts


@pytest.mark.parametrize(("body", "words"), [
    ("{metric: x, threshold: 1}", "query.*a PromQL expression"),
    ("{metric: x, query: up, direction: up}", "direction.*max.*min"),
    ("{metric: x, query: up, threshold: high}", "threshold.*a number"),
    ("{metric: x, query: up, dry_run: 'yes'}", "dry_run.*true or false"),
    ("{metric: x, query: 5}", "query.*text"),
    ("{metric: 'a b', query: up}", "metric.*letters, digits and _"),
    ("{metric: x, query: up, failure_limit: 1.5}", "failure_limit.*an integer"),
    ("{metric: x, query: up, interval: 0.5}", "interval.*seconds >= 1"),
    ("{metric: x, query: up, failure_limit: -1}", "failure_limit.*>= 0"),
])
def test_a_bad_metric_rule_is_named(body: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        HealthPolicy.from_yaml(f"rules: [{{metric: {body}}}]")


def test_a_negative_threshold_is_allowed() -> None:
    (rule,) = HealthPolicy.from_yaml(  # type: ignore[attr-defined]
        "rules: [{metric: {metric: x, query: up, threshold: -2, direction: min}}]").rules.rules
    assert rule.threshold == -2


def test_in_process_a_metric_rule_needs_prometheus() -> None:
    stats = WindowStats("orders", 300, SideStats(100), SideStats(100), source="in-process")
    (result,) = MetricRule(metric="x", query="up").check(stats)
    assert result.status is Status.INCONCLUSIVE
    assert result.message == "needs Prometheus: in-process does not run PromQL (up)"


class _Session(requests.Session):
    """Answers the two subqueries of ``checkout_latency`` with ``(measured, breaches)``."""

    def __init__(self, measured: float | None, breaches: float | None) -> None:
        super().__init__()
        self.counts = {"": measured, "> 0.5": breaches}
        self.queries: list[str] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        query = kwargs["params"]["query"]
        self.queries.append(query)
        result = []
        for breach, value in self.counts.items():
            if query == subquery(QUERY, breach, 300, 60) and value is not None:
                result = [{"metric": {"aurum_migration_name": "orders"}, "value": [1, str(value)]},
                          {"metric": {"aurum_migration_name": "other"}, "value": [1, "99"]}]
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps({"status": "success", "data": {
            "resultType": "vector", "result": result}}).encode()
        return response


@pytest.mark.parametrize(("measured", "breaches", "status", "words"), [
    (5, 0, Status.HEALTHY, "0 of 5 measurements every 60 s > 0.5 (0 missing of 5): within"),
    (5, 1, Status.HEALTHY, "1 of 5"),  # failure_limit 1 tolerates one
    (5, 2, Status.UNHEALTHY, "2 of 5 measurements every 60 s > 0.5 (0 missing of 5): above the "
                             "failure limit 1"),
    (4, 0, Status.HEALTHY, "1 missing of 5"),  # inconclusive_limit 1 tolerates one
    (3, 0, Status.INCONCLUSIVE, "2 missing of 5): above the inconclusive limit 1"),
    (None, None, Status.INCONCLUSIVE, "0 of 0 measurements"),  # no such series
], ids=["healthy", "one-breach-tolerated", "two-breaches", "one-missing-tolerated",
        "two-missing", "no-data"])
def test_the_prometheus_source_measures_a_metric_rule(
    measured: float | None, breaches: float | None, status: Status, words: str
) -> None:
    policy = HealthPolicy.from_yaml(YAML)
    session = _Session(measured, breaches)
    verdict = policy.evaluate("orders", PrometheusSource("http://p.invalid", session=session))
    result = next(r for r in verdict.results if r.rule == "metric:checkout_latency")
    assert result.status is status, result.message
    assert words in result.message
    assert result.query == subquery(QUERY, "> 0.5", 300, 60) and result.threshold == 0.5
    assert verdict.status is status  # the dry-run rule beside it never decides


def test_a_dry_run_is_shown_and_never_decides() -> None:
    rule = MetricRule(metric="checkout_latency", query=QUERY, threshold=0.5, dry_run=True)
    policy = HealthPolicy(rule & MetricRule(metric="other", query="up", threshold=0.5,
                                            failure_limit=9, inconclusive_limit=9))
    verdict = policy.evaluate("orders", PrometheusSource("http://p.invalid",
                                                         session=_Session(5, 5)))
    assert verdict.status is Status.HEALTHY
    dry = next(r for r in verdict.results if r.dry_run)
    assert dry.status is Status.UNHEALTHY
    assert verdict.dry_run == [f"metric:checkout_latency (dry run): unhealthy: {dry.message}"]
    assert all("checkout_latency" not in reason for reason in verdict.reasons)
    assert verdict.to_dict()["results"][0]["dry_run"] is True
    # alone, a dry run is healthy (it never blocks) and still shows what it found
    alone = HealthPolicy(rule).evaluate("orders", PrometheusSource("http://p.invalid",
                                                                   session=_Session(5, 5)))
    assert alone.status is Status.HEALTHY and alone.dry_run


# ---------------------------------------------------------------- promtool: alert == source

SERIES = {  # one sample every 15 s for 10 minutes: values per minute, 4 samples each
    "spiky": [0.2] * 7 + [0.9, 0.9, 0.2],  # two breaching minutes in the last five
    "calm": [0.2] * 8 + [0.9, 0.2],  # one: tolerated by failure_limit 1
}


def _values(per_minute: list[float]) -> str:
    return " ".join(f"{v}x3" for v in per_minute) + f" {per_minute[-1]}"


@needs_promtool
def test_the_alert_fires_where_the_source_says_unhealthy(tmp_path: Path) -> None:
    policy = HealthPolicy.from_yaml(YAML)
    rule = policy.rules.rules[0]  # type: ignore[attr-defined]
    series = [{"series": f'checkout_latency_seconds{{aurum_migration_name="{name}",pod="a"}}',
               "values": _values(values)} for name, values in SERIES.items()]
    counted = subquery(QUERY, "", 300, 60)
    breached = subquery(QUERY, "> 0.5", 300, 60)
    exprs = [
        {"expr": counted, "eval_time": "10m", "exp_samples": [
            {"labels": f'{{aurum_migration_name="{n}"}}', "value": 5} for n in SERIES]},
        {"expr": breached, "eval_time": "10m", "exp_samples": [
            {"labels": '{aurum_migration_name="spiky"}', "value": 2},
            {"labels": '{aurum_migration_name="calm"}', "value": 1}]}]
    run_rule_tests(tmp_path, policy, series, {
        "AurumMigrationMetric_checkout_latency": firing(
            "checkout_latency > 0.5 in more than 1 of the measurements every 60 s", ["spiky"],
            aurum_metric="checkout_latency"),
        "AurumMigrationMetric_queue_depth_floor": []}, exprs)
    # the Python rule on the counts promtool returned for the source's queries
    for name, breaches, status in (("spiky", 2, Status.UNHEALTHY), ("calm", 1, Status.HEALTHY)):
        (found,) = rule.check(WindowStats(name, 300, metrics=_Counts(5, breaches)))
        assert found.status is status, found.message
    alerts = yaml.safe_load(generate_rules(policy))["groups"][1]["rules"]
    dry = next(a for a in alerts if a["alert"] == "AurumMigrationMetric_queue_depth_floor")
    assert dry["labels"] == {"severity": "info", "aurum_rollback": "false",
                             "aurum_dry_run": "true", "aurum_metric": "queue_depth_floor"}
    assert dry["expr"] == "count_over_time(((min(queue_depth)) < 3)[299s:60s]) > 0"


class _Counts:
    def __init__(self, measured: float, breaches: float) -> None:
        self.measured, self.breaches = measured, breaches

    def measurements(self, expression: str, window: float, interval: float,
                     breach: str) -> tuple[float, float, str]:
        return self.measured, self.breaches, subquery(expression, breach, window, interval)

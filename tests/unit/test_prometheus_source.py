"""The Prometheus health source: first samples count, any quantile, malformed answers named.

The source's own PromQL (and the generated rules') is run by ``promtool test rules`` on crafted
series, so these tests check what Prometheus itself would answer, without a server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from aurum_otel import AurumOtelError
from aurum_otel.health import HealthPolicy, LatencyRule, Status
from aurum_otel.health.prometheus import (
    PrometheusAnswerError,
    PrometheusSource,
    PrometheusUnavailableError,
)
from aurum_otel.health.promql import escape, source_queries
from aurum_otel.health.promrules import generate_rules

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def _series(name: str, impl: str, outcome: str, values: str) -> dict[str, str]:
    labels = (f'aurum_migration_name="{escape(name)}",aurum_migration_implementation="{impl}",'
              f'aurum_migration_outcome="{outcome}",aurum_migration_role="authoritative"')
    return {"series": f"aurum_migration_calls_total{{{labels}}}", "values": values}


def _promtool(tmp_path: Path, series: list[dict[str, str]], tests: list[dict[str, Any]]
              ) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(generate_rules())
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": series, "promql_expr_test": tests}],
    }, width=10_000))
    return subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)


# An advance to simplified at minute 6: the simplified series are born with their first export
# already holding 100 failed and 30 good calls; legacy has served 10 calls per 15 s throughout.
ADVANCE = "_x23 100x8"
OK_AFTER = "_x23 30x8"
LEGACY = "0+10x31"


@needs_promtool
@pytest.mark.parametrize("name", ["orders", 'we"ird\\na\nme'])
def test_a_new_series_first_batch_counts_in_the_source_and_the_rules(
    tmp_path: Path, name: str
) -> None:
    """Issue 13.13: right after an advance, 100 failing and 30 good calls read as 77 % errors."""
    series = [_series(name, "legacy", "success", LEGACY),
              _series(name, "simplified", "error", ADVANCE),
              _series(name, "simplified", "success", OK_AFTER)]
    queries = source_queries(name, 300)
    label = f'aurum_migration_name="{escape(name)}",'
    tests = [
        {"expr": queries["calls"], "eval_time": "7m45s", "exp_samples": [
            {"labels": '{aurum_migration_implementation="legacy"}', "value": 200},
            {"labels": '{aurum_migration_implementation="simplified"}', "value": 130}]},
        {"expr": queries["errors"], "eval_time": "7m45s", "exp_samples": [
            {"labels": '{aurum_migration_implementation="simplified"}', "value": 100}]},
        # the generated recording rule reads the same
        {"expr": f'round(aurum:migration_error_ratio:ratio5m{{{label[:-1]},'
                 f'aurum_migration_implementation="simplified"}}, 0.0001)',
         "eval_time": "7m45s", "exp_samples": [
             {"labels": f'{{{label}aurum_migration_implementation="simplified"}}',
              "value": 0.7692}]},
    ]
    result = _promtool(tmp_path, series, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_label_values_are_escaped_in_full() -> None:
    assert escape('a"b\\c\nd\te\x01') == 'a\\"b\\\\c\\nd\\te\\u0001'
    with pytest.raises(AurumOtelError, match="UTF-8"):
        escape("bad\udcff")


# ------------------------------------------------------------------ answers


class FakeSession(requests.Session):
    """Answers each query with ``answer(query) -> (status, body bytes)``."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer
        self.queries: list[str] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        query = kwargs["params"]["query"]
        self.queries.append(query)
        status, body = self.answer(query)
        response = requests.Response()
        response.status_code = status
        response._content = body
        return response


def vector(*samples: tuple[dict[str, str], str]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": metric, "value": [1.0, value]} for metric, value in samples]}}).encode()


def _impl(impl: str) -> dict[str, str]:
    return {"aurum_migration_implementation": impl}


@pytest.mark.parametrize(("body", "cause"), [
    pytest.param(b'{"status":"success","data":{"resultType":"vec', "not JSON", id="truncated"),
    pytest.param(b"<html><body>Login</body></html>", "not JSON", id="html-200"),
    pytest.param(b'{"status":"success"}', "no data.result", id="no-data"),
    pytest.param(vector((_impl("legacy"), "many")), "not a number", id="non-numeric"),
    pytest.param(vector((_impl("legacy"), "-5")), "negative increase", id="negative"),
    pytest.param(b'{"status":"success","data":{"result":[{"metric":{"a":"\xff"}}]}}',
                 "not valid UTF-8", id="not-utf8"),
    pytest.param(b"[1, 2]", "not an object", id="json-array"),
    pytest.param(b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}',
                 "without metric and [time, value]", id="no-value"),
])
def test_a_malformed_answer_raises_a_precise_aurum_error(body: bytes, cause: str) -> None:
    """Issue 13.15: each malformed answer is an aurum error (the CLI's exit 3) naming the cause."""
    source = PrometheusSource("http://prom.invalid", session=FakeSession(lambda q: (200, body)))
    with pytest.raises(PrometheusAnswerError, match=re.escape(cause)) as raised:
        HealthPolicy().evaluate("orders", source)
    assert isinstance(raised.value, AurumOtelError) and raised.value.query


def test_a_failed_query_is_unavailable_not_a_crash() -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})
    source = PrometheusSource("http://prom.invalid",
                              session=FakeSession(lambda q: (200, body.encode())))
    with pytest.raises(PrometheusUnavailableError, match="parse error"):
        source.stats("orders", 300)


def _answers(latencies: dict[str, dict[str, str]], calls: str = "100", errors: str = "0") -> Any:
    def answer(query: str) -> tuple[int, bytes]:
        if query.startswith("histogram_quantile("):
            q = query[len("histogram_quantile("):].split(",", 1)[0]
            return 200, vector(*((_impl(i), v) for i, v in latencies.get(q, {}).items()))
        if "comparison" in query:
            return 200, vector()
        if 'outcome="error"' in query:
            return 200, vector((_impl("legacy"), errors), (_impl("simplified"), errors))
        return 200, vector((_impl("legacy"), calls), (_impl("simplified"), calls))
    return answer


def test_the_latency_quantile_the_rule_asks_for_is_queried() -> None:
    """Issue 13.16: a p99 rule reads p99, not a hard-coded p95."""
    session = FakeSession(_answers({"0.99": {"legacy": "0.01", "simplified": "0.05"},
                                    "0.95": {"legacy": "0.01", "simplified": "0.011"}}))
    source = PrometheusSource("http://prom.invalid", session=session)
    verdict = HealthPolicy(LatencyRule(quantile=0.99)).evaluate("orders", source)
    assert verdict.status is Status.UNHEALTHY, verdict.reasons
    assert "p99 50.0 ms is 5.00x" in verdict.reasons[0]
    assert verdict.results[0].query is not None
    assert verdict.results[0].query.startswith("histogram_quantile(0.99,")
    assert any(q.startswith("histogram_quantile(0.99,") for q in session.queries)


@pytest.mark.parametrize("bad", ["NaN", "+Inf"])
def test_non_finite_figures_from_prometheus_are_inconclusive(bad: str) -> None:
    """Issue 13.14: NaN or +Inf counts never read as healthy 0 % nor move a migration."""
    for calls, errors in ((bad, "0"), ("100", bad)):
        source = PrometheusSource("http://prom.invalid",
                                  session=FakeSession(_answers({}, calls, errors)))
        verdict = HealthPolicy().evaluate("orders", source)
        assert verdict.status is Status.INCONCLUSIVE, verdict.reasons
        assert "cannot be judged" in verdict.reasons[0]
    quantile = PrometheusSource("http://prom.invalid", session=FakeSession(
        _answers({"0.95": {"legacy": bad, "simplified": "0.01"}})))
    verdict = HealthPolicy(LatencyRule()).evaluate("orders", quantile)
    assert verdict.status is Status.INCONCLUSIVE and "could not be measured" in verdict.reasons[0]


@needs_promtool
@pytest.mark.parametrize("quantile", [0.99, 0.5, 0.999])
def test_rules_with_any_latency_quantile(tmp_path: Path, quantile: float) -> None:
    """Issue 13.15/13.16: `rules` with a latency quantile other than 0.95 works and records it."""
    policy = HealthPolicy(LatencyRule(quantile=quantile))
    text = generate_rules(policy)
    assert f"histogram_quantile({quantile:g}," in text
    assert "histogram_quantile(0.95," not in text
    (tmp_path / "rules.yml").write_text(text)
    assert PROMTOOL is not None
    check = subprocess.run([PROMTOOL, "check", "rules", "rules.yml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

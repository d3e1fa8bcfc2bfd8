"""Split integrity in PromQL (issue 16.1): the Prometheus source's queries and the generated
alert, run by ``promtool test rules`` on crafted series, agree with the Python rule.

Series: one sample every 15 s for 10 minutes; the window is 5 minutes (20 samples), so
``0+10x40`` is 200 calls in the window. ``aurum_migration_rollout_percent`` is the configured
percent as the library is to export it (see the module docstring of health/split.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from aurum_otel.health import (
    ConfiguredSplit,
    HealthPolicy,
    SideStats,
    SplitRule,
    SplitStats,
    Status,
    WindowStats,
)
from aurum_otel.health.prometheus import PrometheusSource
from aurum_otel.health.promql import configured_share, duration, routed, routing_keys
from tests.unit.health.promtool import firing, needs_promtool, run_rule_tests

LABELS = "aurum_migration_role=\"authoritative\""

# name -> (series, configured percent or None, Python's (legacy, simplified) in the window)
CASES: dict[str, tuple[list[tuple[str, str, str]], str | None, tuple[float, float]]] = {
    # configured 10 %, one routing key: no call reaches simplified
    "one_key": ([("legacy", "success", "0+10x40")], "10x40", (200, 0)),
    # configured 10 %, served 10 %; a fallback (routed to simplified, served by legacy) is
    # counted once, as simplified's error
    "exact": ([("legacy", "success", "0+9x40"), ("simplified", "success", "0+1x40"),
               ("simplified", "error", "0x40"), ("legacy", "fallback", "0+5x40")],
              "10x40", (180, 20)),
    # a biased bucket: 25 % served at a configured 10 %
    "biased": ([("legacy", "success", "0+15x40"), ("simplified", "success", "0+5x40")],
               "10x40", (300, 100)),
    # the legacy phase (0 %): one simplified call is a leak
    "leak": ([("legacy", "success", "0+10x40"), ("simplified", "success", "0x20 1x20")],
             "0x40", (200, 1)),
    # too few calls to judge
    "few": ([("legacy", "success", "0+1x40")], "10x40", (20, 0)),
    # the step changed within the window: not judged on either step
    "step": ([("legacy", "success", "0+10x40")], "10x30 50x10", (200, 0)),
}
FIRING = {"one_key", "biased", "leak"}


def _series() -> list[dict[str, str]]:
    out = []
    for name, (calls, percent, _) in CASES.items():
        for impl, outcome, values in calls:
            out.append({"series": f'aurum_migration_calls_total{{aurum_migration_name="{name}",'
                                  f'aurum_migration_implementation="{impl}",'
                                  f'aurum_migration_outcome="{outcome}",{LABELS}}}',
                        "values": values})
        if percent is not None:
            out.append({"series": f'aurum_migration_rollout_percent{{aurum_migration_name='
                                  f'"{name}",instance="a"}}', "values": percent})
    return out


def _python(name: str) -> tuple[Status, str]:
    _, percent, (legacy, simplified) = CASES[name]
    configured = float(percent.split("x")[0]) if percent and " " not in percent else None
    split = None if configured is None else SplitStats(configured, legacy, simplified, 300)
    stats = WindowStats(name, 300, SideStats(legacy), SideStats(simplified), split=split)
    (result,) = SplitRule().check(stats)
    return result.status, result.message


@needs_promtool
def test_the_alert_and_the_source_queries_agree_with_the_python_rule(tmp_path: Path) -> None:
    rule = SplitRule()
    alerts = firing("authoritative split differs from the configured percent "
                    "(sample-ratio mismatch at 0.999)", FIRING)
    w = duration(300)
    exprs = []
    for name, (_, percent, (legacy, simplified)) in CASES.items():
        samples = [{"labels": f'{{aurum_migration_implementation="{impl}"}}', "value": value}
                   for impl, value in (("legacy", legacy), ("simplified", simplified)) if value]
        exprs.append({"expr": routed(w, "aurum_migration_implementation", name),
                      "eval_time": "10m", "exp_samples": samples})
        share = [] if percent is None or " " in percent else [
            {"labels": f'{{aurum_migration_name="{name}"}}',
             "value": float(percent.split("x")[0]) / 100}]
        exprs.append({"expr": configured_share(w, name), "eval_time": "10m",
                      "exp_samples": share})
    run_rule_tests(tmp_path, HealthPolicy(rule), _series(), {"AurumMigrationSplit": alerts},
                   exprs)
    # the Python rule, on the very counts the source's queries returned above
    condemned = {name for name in CASES if _python(name)[0] is Status.UNHEALTHY}
    assert condemned == FIRING
    assert _python("few")[0] is Status.INCONCLUSIVE
    assert _python("step")[0] is Status.HEALTHY  # no single configured percent: not judged


class _Session(requests.Session):
    def __init__(self, answers: dict[str, list[tuple[dict[str, str], float]]]) -> None:
        super().__init__()
        self.answers, self.queries = answers, []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        query = kwargs["params"]["query"]
        self.queries.append(query)
        found = next((v for k, v in self.answers.items() if query.startswith(k)), [])
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps({"status": "success", "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1, str(v)]} for m, v in found]}}).encode()
        return response


def test_the_prometheus_source_judges_the_split_from_the_gauge_or_the_store() -> None:
    impl = "aurum_migration_implementation"
    answers = {
        routing_keys("orders"): [],  # calls without routing keys: judged by calls
        configured_share(duration(300), "orders"): [({"aurum_migration_name": "orders"}, 0.1)],
        "sum by (aurum_migration_implementation) ((increase(aurum_migration_calls_total{"
        'aurum_migration_name="orders", aurum_migration_role="authoritative"':
            [({impl: "legacy"}, 200.0)],
        "sum by": [({impl: "legacy"}, 200.0), ({impl: "simplified"}, 200.0)],
    }
    session = _Session(answers)
    verdict = HealthPolicy().evaluate("orders", PrometheusSource("http://p.invalid",
                                                                 session=session))
    (split,) = [r for r in verdict.results if r.rule == "split"]
    assert split.status is Status.UNHEALTHY and split.samples == {"legacy": 200, "simplified": 0}
    assert split.query is not None and 'aurum_migration_outcome!="fallback"' in split.query
    # told by the store that the step began 60 s ago: counted over 60 s, not the window
    told = PrometheusSource("http://p.invalid", session=_Session(answers), clock=lambda: 1060.0,
                            split_of=lambda name: ConfiguredSplit(10, 1000.0, "hybrid 10%/0%"))
    stats = told.stats("orders", 300)
    assert stats.split is not None and stats.split.window == 60
    assert "[60s]" in stats.split.query and stats.split.step == "hybrid 10%/0%"
    # no gauge and no store: not judged
    bare = PrometheusSource("http://p.invalid", session=_Session({}))
    assert bare.stats("orders", 300).split is None

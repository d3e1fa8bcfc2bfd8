"""``promtool test rules`` for the health rules' PromQL: the generated rules of a policy, crafted
input series (one sample every 15 s), the alerts expected to fire at 10 minutes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurum_otel.health import HealthPolicy
from aurum_otel.health.promrules import generate_rules

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
EVAL = "10m"


def firing(summary: str, names: Iterable[str], **labels: str) -> list[dict[str, Any]]:
    """The alerts one acting rule fires for ``names`` (its summary after ``migration NAME: ``)."""
    return [{"exp_labels": {"severity": "critical", "aurum_rollback": "true", **labels,
                            "aurum_migration_name": name},
             "exp_annotations": {
                 "summary": f"migration {name}: {summary}",
                 "description": "aurum-otel health rule over 5m; the controller rolls back "
                                "after consecutive unhealthy verdicts."}}
            for name in sorted(names)]


def run_rule_tests(tmp_path: Path, policy: HealthPolicy, series: Sequence[Mapping[str, str]],
                   alerts: Mapping[str, list[dict[str, Any]]],
                   exprs: Sequence[Mapping[str, Any]] = ()) -> None:
    """Generate ``policy``'s rules and check, with promtool, that at 10 minutes each alert of
    ``alerts`` (alert name -> expected alerts) fires as expected and each of ``exprs`` answers
    its expected samples."""
    test: dict[str, Any] = {"interval": "15s", "input_series": list(series),
                            "alert_rule_test": [{"eval_time": EVAL, "alertname": name,
                                                 "exp_alerts": expected}
                                                for name, expected in alerts.items()]}
    if exprs:
        test["promql_expr_test"] = list(exprs)
    (tmp_path / "rules.yml").write_text(generate_rules(policy))
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "15s", "tests": [test]},
        width=10_000))
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

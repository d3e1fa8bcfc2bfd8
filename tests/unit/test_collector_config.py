"""The shipped Grafana dashboard, Tempo config and docker-compose file: they parse, they use only the
telemetry contract's names, and their PromQL is valid (checked by ``promtool``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurum_otel import semconv
from aurum_otel.health.promrules import generate_rules

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "collector-config"
DASHBOARD = CONFIG / "grafana" / "aurum-migrations.json"
COMPOSE = CONFIG / "docker-compose.yml"
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists()
                                         else None)

RECORDED = {rule["record"] for group in yaml.safe_load(generate_rules())["groups"]
            for rule in group["rules"] if "record" in rule}
_BUCKET = semconv.PROM_DURATION_BUCKET
METRICS = {semconv.PROM_CALLS, semconv.PROM_COMPARISONS, semconv.PROM_TRANSITIONS, _BUCKET,
           _BUCKET.removesuffix("_bucket") + "_sum", _BUCKET.removesuffix("_bucket") + "_count",
           semconv.PROM_ROLLOUT_PERCENT, semconv.PROM_ROUTING_KEYS, semconv.PROM_PAIRS,
           semconv.PROM_PAIR_RATIOS, *RECORDED, "ALERTS"}
LABELS = {semconv.PROM_LABEL_NAME, semconv.PROM_LABEL_IMPLEMENTATION, semconv.PROM_LABEL_OUTCOME,
          semconv.PROM_LABEL_ROLE, semconv.PROM_LABEL_COMPARISON, semconv.PROM_LABEL_PHASE,
          semconv.PROM_LABEL_FAILED, semconv.PROM_LABEL_SLOWER,
          *(attr.replace(".", "_") for attr in (semconv.ATTR_FROM, semconv.ATTR_TO,
                                                semconv.ATTR_REASON)),
          "le", "alertname", "alertstate"}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def expressions() -> dict[str, str]:
    found = {}
    for panel in dashboard()["panels"]:
        for index, target in enumerate(panel.get("targets", [])):
            found[f"{panel['title']}#{index}"] = target["expr"]
    for index, annotation in enumerate(dashboard()["annotations"]["list"]):
        if "expr" in annotation:
            found[f"annotation {annotation['name']}#{index}"] = annotation["expr"]
    return found


def concrete(expression: str) -> str:
    """A dashboard expression with Grafana's variables replaced, as Grafana sends it."""
    return (expression.replace("$migration", ".+").replace("$__rate_interval", "1m")
            .replace("$__range", "1h").replace("$__interval", "15s"))


def readme_error_ratio_query() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```promql\n(.*?)```", text, re.DOTALL)
    assert match
    return " ".join(match.group(1).split())


# ------------------------------------------------------------------------------ dashboard


def test_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    document = dashboard()
    assert document["uid"] == "aurum-migrations" and document["title"]
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["migration"]["type"] == "query"
    assert semconv.PROM_LABEL_NAME in variables["migration"]["definition"]
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert '=~"$migration"' in target["expr"], (panel["title"], target["expr"])


def test_dashboard_has_the_promised_panels() -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard()["panels"])
    for wanted in ("calls by implementation", "error ratio per implementation",
                   "p95 latency per implementation", "mismatch ratio", "transitions", "phase",
                   "split: configured vs served", "only one side failed",
                   "median duration ratio"):
        assert wanted in titles, titles


def test_error_ratio_panel_is_the_readme_query_for_the_selected_migrations() -> None:
    panel = next(p for p in dashboard()["panels"] if p["title"] == "Error ratio per implementation")
    expression = panel["targets"][0]["expr"]
    unselected = (expression.replace('{aurum_migration_name=~"$migration", ', "{")
                  .replace('{aurum_migration_name=~"$migration"}', ""))
    assert " ".join(unselected.split()) == readme_error_ratio_query()


def test_p95_panel_reads_the_latency_histogram_of_the_contract() -> None:
    panel = next(p for p in dashboard()["panels"] if p["title"].startswith("p95"))
    expression = panel["targets"][0]["expr"]
    assert expression.startswith("histogram_quantile(0.95, sum by (le,")
    assert semconv.PROM_DURATION_BUCKET in expression
    assert semconv.PROM_LABEL_IMPLEMENTATION in expression


@pytest.mark.parametrize(("where", "expression"), sorted(expressions().items()))
def test_dashboard_queries_use_only_contract_names(where: str, expression: str) -> None:
    # Drop string literals and Grafana variables, then look at every identifier.
    code = re.sub(r'"[^"]*"', '""', expression)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", code))
    aurum = {n for n in names if "aurum" in n or n.startswith("traces_")}
    unknown = aurum - METRICS - LABELS
    assert not unknown, f"{where}: names outside aurum_otel.semconv / the recording rules: {unknown}"
    selected = set(re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]", code))
    assert selected, f"{where}: selects no metric"
    assert selected <= METRICS, f"{where}: unknown metrics {selected - METRICS}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression of a rules file: each query becomes a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": concrete(expression)}
        for i, expression in enumerate(expressions().values())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules, width=10_000), encoding="utf-8")
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------------- compose, tempo, grafana


def test_compose_file_parses_and_mounts_files_that_exist() -> None:
    header = COMPOSE.read_text(encoding="utf-8").splitlines()[:12]
    assert any("NOT RUN BY THE TESTS" in line for line in header)
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = document["services"]
    assert {"otelcol", "jaeger", "tempo", "prometheus", "grafana"} <= set(services)
    named_volumes = set(document.get("volumes", {}))
    mounted: dict[str, str] = {}
    for name, service in services.items():
        assert service.get("image"), name
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (CONFIG / source).exists(), f"{name} mounts missing {source}"
                mounted[target] = source
            else:
                assert source in named_volumes, f"{name}: undeclared volume {source}"
    # Prometheus gets its config and the generated rules side by side (rule_files is relative).
    prometheus_yml = yaml.safe_load((CONFIG / "prometheus.yml").read_text(encoding="utf-8"))
    for rule_file in prometheus_yml["rule_files"]:
        assert mounted.get(f"/etc/prometheus/{rule_file}") == f"./{rule_file}"
    assert any("--config.file=/etc/prometheus/prometheus.yml" in arg
               for arg in services["prometheus"]["command"])
    # The collector runs the tested otelcol.yaml plus the Tempo overlay.
    command = " ".join(services["otelcol"]["command"])
    assert "otelcol.yaml" in command and "otelcol.compose.yaml" in command
    # Grafana's dashboard provider reads the directory the dashboard is mounted into.
    providers = yaml.safe_load(
        (CONFIG / "grafana/provisioning/dashboards/aurum.yaml").read_text(encoding="utf-8"))
    path = providers["providers"][0]["options"]["path"]
    assert mounted[f"{path}/aurum-migrations.json"] == "./grafana/aurum-migrations.json"
    sources = yaml.safe_load(
        (CONFIG / "grafana/provisioning/datasources/aurum.yaml").read_text(encoding="utf-8"))
    by_type = {s["type"]: s for s in sources["datasources"]}
    assert by_type["prometheus"]["isDefault"] is True
    assert by_type["prometheus"]["url"].endswith(":9090")
    assert {"jaeger", "tempo"} <= set(by_type)


def test_tempo_config_has_an_otlp_receiver_and_local_storage() -> None:
    tempo = yaml.safe_load((CONFIG / "tempo.yaml").read_text(encoding="utf-8"))
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert {"grpc", "http"} <= set(protocols)
    overlay = yaml.safe_load((CONFIG / "otelcol.compose.yaml").read_text(encoding="utf-8"))
    exporter = overlay["exporters"]["otlp_grpc/tempo"]
    assert exporter["endpoint"] == protocols["grpc"]["endpoint"]  # the collector reaches Tempo
    storage = tempo["storage"]["trace"]
    assert storage["backend"] == "local"
    assert storage["local"]["path"] and storage["wal"]["path"]
    # Tempo must not take the collector's OTLP ports (all services share the host network).
    collector = yaml.safe_load((CONFIG / "otelcol.yaml").read_text(encoding="utf-8"))
    taken = {p["endpoint"] for p in collector["receivers"]["otlp"]["protocols"].values()}
    assert not taken & {p["endpoint"] for p in protocols.values()}


def _otelcol_binary() -> Path | None:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "servers.sh"), "env"],
                            capture_output=True, text=True, timeout=30, check=False)
    match = re.search(r"^export AURUM_OTELCOL_BIN=(.+)$", result.stdout, re.MULTILINE)
    if match is None:
        return None
    binary = Path(match.group(1).strip())
    return binary if binary.is_file() else None


def test_compose_collector_overlay_validates_with_the_built_collector() -> None:
    binary = _otelcol_binary()
    if binary is None:
        pytest.skip("the collector is not built (bash scripts/servers.sh build otelcol)")
    result = subprocess.run(
        [str(binary), "validate", "--config", str(CONFIG / "otelcol.yaml"),
         "--config", str(CONFIG / "otelcol.compose.yaml")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

"""The real telemetry pipeline: app -> OTLP -> collector -> Jaeger / Prometheus -> rules, controller.

Every test runs ``apps/app.py`` in a subprocess that calls ``setup_telemetry`` and routes calls of
a ``@migrated`` function whose migration name is unique to the test run, so series and traces of
earlier runs never interfere. Run with ``-s`` to see the measured figures.

A note on Prometheus counters: ``rate()``/``increase()`` never see the traffic counted in a
series' *first* sample (there is no earlier sample to subtract; Prometheus 2.42 does not ingest
created timestamps). A burst exported within one interval of a series appearing is therefore
invisible to window queries. The tests first *prime* every series they measure with a few calls,
wait for Prometheus to scrape them, and only then run the measured traffic.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Implementation, Phase, Rollout
from aurum_otel.control import DEFAULT_PLAN, Controller, Tick
from aurum_otel.health import HealthPolicy, Status, default_rules
from aurum_otel.health.prometheus import PrometheusSource, promql_queries
from tests.integration.conftest import ROOT, AppProcess, Pipeline, Prometheus, wait_for

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
DASHBOARD = ROOT / "collector-config" / "grafana" / "aurum-migrations.json"
NAME = "aurum_migration_name"
IMPL = "aurum_migration_implementation"
StartApp = Callable[..., AppProcess]


def readme_error_ratio_query() -> str:
    """The per-implementation error-ratio PromQL documented in README.md, verbatim."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```promql\n(.*?)```", text, re.DOTALL)
    assert match, "README.md has no ```promql block"
    return " ".join(match.group(1).split())


def set_phase(state_dir: Path, migration: str, phase: Phase, rollout: Rollout | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    FileStore.in_dir(state_dir).transition(migration, phase, rollout, actor="pipeline-test",
                                           reason="test set-up")


def selector(migration: str, **labels: str) -> str:
    pairs = [f'{NAME}="{migration}"', *(f'{k}="{v}"' for k, v in labels.items())]
    return "{" + ",".join(pairs) + "}"


def series_total(prometheus: Prometheus, migration: str) -> tuple[float, int]:
    """(sum of the calls counters, number of series) of ``migration`` as last scraped."""
    values = prometheus.values(f"aurum_migration_calls_total{selector(migration)}",
                               IMPL, "aurum_migration_outcome", "aurum_migration_role",
                               "aurum_migration_phase")
    return sum(values.values()), len(values)


def span_total(prometheus: Prometheus, migration: str) -> float:
    """Spans of ``migration`` counted by the collector's span_metrics connector, as last scraped."""
    values = prometheus.values(
        f'sum(traces_span_metrics_calls_total{{{NAME}="{migration}",{IMPL}!=""}})')
    return sum(values.values())


def wait_scraped(prometheus: Prometheus, migration: str, calls: float, *, series: int = 1,
                 spans: float | None = None, timeout: float = 30) -> float:
    """Wait until Prometheus holds ``calls`` calls (the raw counters) in >= ``series`` series and,
    if given, ``spans`` spans in the span-metrics histogram (the latency source)."""
    def probe() -> bool | None:
        total, count = series_total(prometheus, migration)
        if total < calls or count < series:
            return None
        if spans is not None and span_total(prometheus, migration) < spans:
            return None
        return True

    _, seconds = wait_for(probe, timeout=timeout, interval=0.25,
                          what=f"{calls:g} calls of {migration} in Prometheus")
    return seconds


def prime(app: AppProcess, prometheus: Prometheus) -> int:
    """Create the success and error series of both implementations and wait until scraped.

    Returns the number of calls made. Needs a hybrid phase that serves both implementations.
    """
    app.send("config", error_rate={"legacy": 0.5, "simplified": 0.5})
    made = 0
    served = {"legacy": 0, "simplified": 0}
    while min(served.values()) < 2:
        tally = app.send("calls", n=8)
        assert tally["unexpected_count"] == 0, tally
        made += tally["calls"]
        for impl in served:
            served[impl] += tally["served"][impl]
    app.send("flush")
    wait_scraped(prometheus, app.migration, made, series=4, spans=made)
    return made


def jaeger_tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def events(span: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for log in span.get("logs", []):
        fields = {f["key"]: f["value"] for f in log.get("fields", [])}
        found.append(fields)
    return found


# ------------------------------------------------------------------------------------ traces


def test_migration_trace_reaches_jaeger(pipeline: Pipeline, start_app: StartApp, unique: str,
                                        tmp_path: Path) -> None:
    migration, service = f"e2e_trace_{unique}", f"aurum-e2e-trace-{unique}"
    state = tmp_path / "state"
    set_phase(state, migration, Phase.HYBRID, Rollout(percent=0, compare=100))
    app = start_app(service=service, migration=migration, state_dir=state)
    assert app.ready["phase"] == "hybrid"

    # Shadows run after the call returns: wait for them before changing the faults.
    matched = app.send("calls", n=3)
    assert app.send("flush")["shadows_done"]
    app.send("config", mismatch_rate=1.0)
    mismatched = app.send("calls", n=1)
    assert app.send("flush")["shadows_done"]
    app.send("config", mismatch_rate=0.0, error_rate={"legacy": 1.0})
    failed = app.send("calls", n=1)
    assert matched["ok"] == 3 and mismatched["ok"] == 1, (matched, mismatched)
    assert failed["injected_errors"]["legacy"] == 1, failed
    assert app.send("flush")["shadows_done"]
    exported = time.monotonic()

    def complete() -> list[dict[str, Any]] | None:
        traces = pipeline.jaeger.traces(service)
        done = [t for t in traces
                if {s["operationName"] for s in t["spans"]} >= {f"migrate {migration}",
                                                               f"shadow {migration}"}]
        return done if len(done) >= 5 else None

    traces, seconds = wait_for(complete, timeout=30, what=f"5 traces of {service} in Jaeger")
    print(f"\n[jaeger] {len(traces)} traces with their shadow spans queryable "
          f"{time.monotonic() - exported:.2f} s after the flush (polled {seconds:.2f} s)")

    comparisons: list[str] = []
    outcomes: list[str] = []
    for trace in traces:
        spans = {s["operationName"]: s for s in trace["spans"]}
        assert len(trace["spans"]) == 2, [s["operationName"] for s in trace["spans"]]
        root, shadow = spans[f"migrate {migration}"], spans[f"shadow {migration}"]
        assert trace["processes"][root["processID"]]["serviceName"] == service
        tags = jaeger_tags(root)
        assert tags["aurum.migration.name"] == migration
        assert tags["aurum.migration.phase"] == "hybrid"
        assert tags["aurum.migration.implementation"] == "legacy"  # percent 0: legacy serves
        assert "aurum.migration.phase_source" not in tags  # the store: the usual source, untagged
        outcomes.append(tags["aurum.migration.outcome"])
        if tags["aurum.migration.outcome"] == "error":
            assert tags["error.type"].endswith("InjectedFault"), tags
            assert tags.get("otel.status_code") == "ERROR" or tags.get("error") is True, tags
        flag_events = [e for e in events(root) if e.get("event") == "feature_flag.evaluation"]
        # the calls are routed by key: the event carries its keyed hash, 16 hex digits
        context_ids = [e.pop("feature_flag.context.id", None) for e in flag_events]
        assert all(isinstance(i, str) and re.fullmatch(r"[0-9a-f]{16}", i)
                   for i in context_ids), context_ids
        assert flag_events == [{
            "event": "feature_flag.evaluation",
            "feature_flag.key": f"aurum.migration.{migration}.phase",
            "feature_flag.result.variant": "hybrid",
            "feature_flag.provider.name": "aurum-otel",
            "feature_flag.result.reason": "split",
        }], events(root)
        # The shadow is a child of the routed call's span, run by the other implementation.
        assert {(r["refType"], r["spanID"]) for r in shadow["references"]} == {
            ("CHILD_OF", root["spanID"])}
        shadow_tags = jaeger_tags(shadow)
        assert shadow_tags["aurum.migration.role"] == "shadow"
        assert shadow_tags["aurum.migration.implementation"] == "simplified"
        assert shadow_tags["aurum.migration.name"] == migration
        comparisons.append(shadow_tags["aurum.migration.comparison"])
        if shadow_tags["aurum.migration.comparison"] == "mismatch" and tags[
                "aurum.migration.outcome"] == "success":
            assert shadow_tags.get("aurum.migration.differences"), shadow_tags
    print(f"[jaeger] outcomes {sorted(outcomes)}, comparisons {sorted(comparisons)}")
    assert sorted(outcomes) == ["error", "success", "success", "success", "success"]
    # 3 equal results, 1 different value, 1 legacy error vs a simplified success.
    assert sorted(comparisons) == ["match", "match", "match", "mismatch", "mismatch"]


# ------------------------------------------------------------------------------ error ratio


def test_readme_error_ratio_query_matches_the_traffic(pipeline: Pipeline, start_app: StartApp,
                                                      unique: str, tmp_path: Path) -> None:
    migration, service = f"e2e_ratio_{unique}", f"aurum-e2e-ratio-{unique}"
    prometheus = pipeline.prometheus
    state = tmp_path / "state"
    set_phase(state, migration, Phase.HYBRID, Rollout(percent=50, compare=0))
    app = start_app(service=service, migration=migration, state_dir=state)
    primed = prime(app, prometheus)

    # The measured mix: legacy never fails, simplified fails on exactly 1 run in 5.
    app.send("config", error_rate={"legacy": 0.0, "simplified": 0.2})
    tally = app.send("calls", n=1000)
    assert tally["unexpected_count"] == 0, tally
    served, injected = tally["served"], tally["injected_errors"]
    assert injected["legacy"] == 0 and injected["simplified"] > 0
    expected = {"legacy": 0.0, "simplified": injected["simplified"] / served["simplified"]}
    assert abs(expected["simplified"] - 0.2) < 0.005  # deterministic faults

    app.send("flush")
    flushed = time.monotonic()
    wait_scraped(prometheus, migration, primed + tally["calls"], series=4)
    query = readme_error_ratio_query()
    assert "aurum_migration_calls_total" in query and "aurum_migration_outcome" in query

    def ratios() -> dict[str, float] | None:
        values = prometheus.values(query, NAME, IMPL)
        mine = {impl: value for (name, impl), value in values.items() if name == migration}
        return mine if set(mine) == {"legacy", "simplified"} else None

    observed, _ = wait_for(ratios, timeout=30, interval=0.25,
                           what="the README error-ratio query to answer both implementations")
    seen = time.monotonic() - flushed
    library = prometheus.values(promql_queries(migration, 300)["error_rate"], IMPL)
    print(f"\n[promql] README error ratio for {migration}: legacy {observed['legacy']:.4f} "
          f"(expected 0), simplified {observed['simplified']:.4f} (expected "
          f"{expected['simplified']:.4f}; {injected['simplified']} of {served['simplified']} "
          f"calls), {served['legacy']} legacy calls; series complete in Prometheus "
          f"{seen:.2f} s after the app's flush")
    print(f"[promql] the library's own error_rate query: "
          f"{ {k[0]: round(v, 4) for k, v in library.items()} }")
    assert observed["legacy"] == pytest.approx(0.0, abs=1e-9)
    assert observed["simplified"] == pytest.approx(expected["simplified"], abs=0.01)
    assert library[("simplified",)] == pytest.approx(observed["simplified"], abs=0.005)

    # Every query of the shipped Grafana dashboard runs on the real Prometheus, and the panels
    # the README promises (calls, error ratio, p95 per implementation) show this migration.
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    answered: dict[str, int] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = (target["expr"].replace("$migration", migration)
                          .replace("$__rate_interval", "1m").replace("$__range", "1h")
                          .replace("$__interval", "15s"))
            answered[panel["title"]] = len(prometheus.query(expression))
    print(f"[grafana] series per dashboard panel: {answered}")
    for title, count in answered.items():
        if re.search(r"calls|error ratio|p95", title, re.IGNORECASE):
            assert count > 0, f"dashboard panel {title!r} shows nothing for {migration}"


# ----------------------------------------------------------- in-process vs Prometheus verdict

MIXES: dict[str, dict[str, Any]] = {
    # Both sides fail 1 % of the time and take ~2 ms: nothing to object to.
    "healthy": {"error_rate": {"legacy": 0.01, "simplified": 0.01},
                "latency_ms": {"legacy": 2, "simplified": 2}},
    # Simplified fails 1 call in 5 and is ten times slower.
    "unhealthy": {"error_rate": {"legacy": 0.0, "simplified": 0.2},
                  "latency_ms": {"legacy": 2, "simplified": 20}},
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_prometheus_and_in_process_verdicts_agree(pipeline: Pipeline, start_app: StartApp,
                                                   unique: str, tmp_path: Path, mix: str) -> None:
    migration, service = f"e2e_verdict_{mix}_{unique}", f"aurum-e2e-verdict-{unique}"
    prometheus = pipeline.prometheus
    state = tmp_path / "state"
    set_phase(state, migration, Phase.HYBRID, Rollout(percent=50, compare=0))
    app = start_app(service=service, migration=migration, state_dir=state)
    primed = prime(app, prometheus)
    app.send("config", **MIXES[mix])
    tally = app.send("calls", n=600)
    assert tally["unexpected_count"] == 0, tally
    app.send("flush")
    wait_scraped(prometheus, migration, primed + tally["calls"], series=4,
                 spans=primed + tally["calls"])

    policy = HealthPolicy(default_rules(min_samples=20), window=300)
    backend = policy.evaluate(migration, PrometheusSource(prometheus.url))
    backend_stats = PrometheusSource(prometheus.url).stats(migration, 300)
    answer = app.send("verdict", window=300, min_samples=20)
    local, figures = answer["verdict"], answer["figures"]

    def row(source: str, status: str, legacy: tuple[Any, ...], simplified: tuple[Any, ...]) -> str:
        def side(v: tuple[Any, ...]) -> str:
            p95 = "-" if v[2] is None else f"{v[2]:.2f} ms"
            return f"{v[0]:7.1f} calls {v[1]:6.1f} errors p95 {p95}"
        return f"  {source:<11} {status:<10} legacy {side(legacy)} | simplified {side(simplified)}"

    def p95(stats: Any, impl: str) -> float | None:
        value = stats.quantile(Implementation(impl), 0.95)
        return None if value is None else value * 1000

    print(f"\n[verdict] mix {mix!r}: app saw {tally['served']} served, "
          f"{tally['injected_errors']} injected errors (+{primed} priming calls)")
    print(row("prometheus", backend.status.value,
              (backend_stats.legacy.calls, backend_stats.legacy.errors, p95(backend_stats, "legacy")),
              (backend_stats.simplified.calls, backend_stats.simplified.errors,
               p95(backend_stats, "simplified"))))
    print(row("in-process", local["status"],
              tuple(figures["legacy"][k] for k in ("calls", "errors", "p95_ms")),
              tuple(figures["simplified"][k] for k in ("calls", "errors", "p95_ms"))))
    for result in backend.results:
        print(f"  prometheus {result.rule}: {result.status.value}: {result.message}")
    for result in local["results"]:
        print(f"  in-process {result['rule']}: {result['status']}: {result['message']}")

    wanted = Status.HEALTHY if mix == "healthy" else Status.UNHEALTHY
    assert backend.status is wanted, backend.reasons
    assert local["status"] == wanted.value, local["reasons"]
    # Rule by rule, both sources reach the same conclusion.
    assert {r.rule: r.status.value for r in backend.results} == {
        r["rule"]: r["status"] for r in local["results"]}
    if mix == "unhealthy":
        assert {r.rule for r in backend.results if r.status is Status.UNHEALTHY} == {
            "error_rate", "latency"}
    # And the figures behind them agree (Prometheus does not see the priming calls, and its
    # increase() extrapolates to the window's edges, hence the tolerance).
    for impl in ("legacy", "simplified"):
        mine = figures[impl]["calls"]
        theirs = backend_stats.side(Implementation(impl)).calls
        assert theirs == pytest.approx(mine, rel=0.15), (impl, mine, theirs)
    s_local = figures["simplified"]["errors"] / figures["simplified"]["calls"]
    s_backend = backend_stats.simplified.errors / backend_stats.simplified.calls
    assert s_backend == pytest.approx(s_local, abs=0.02)


# ------------------------------------------------------------ error spike: alert and rollback


def _alert(prometheus: Prometheus, migration: str, alert: str) -> dict[str, Any] | None:
    for item in prometheus.alerts():
        labels = item["labels"]
        if labels.get("alertname") == alert and labels.get(NAME) == migration:
            return item
    return None


def _epoch(rfc3339: str) -> float:
    """Prometheus's ``activeAt`` (RFC 3339, nanoseconds) as epoch seconds."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", rfc3339.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def test_error_spike_fires_the_alert_and_the_controller_rolls_back(
        pipeline: Pipeline, start_app: StartApp, unique: str, tmp_path: Path) -> None:
    migration, service = f"e2e_spike_{unique}", f"aurum-e2e-spike-{unique}"
    prometheus = pipeline.prometheus
    assert any(rule.get("name") == "AurumMigrationErrorRate"
               for group in prometheus.rule_groups() for rule in group["rules"]), \
        "Prometheus has not loaded collector-config/aurum-rules.yml"
    state = tmp_path / "state"
    set_phase(state, migration, Phase.HYBRID, Rollout(percent=50, compare=0))
    app = start_app(service=service, migration=migration, state_dir=state)
    prime(app, prometheus)
    app.send("config", error_rate={"legacy": 0.0, "simplified": 0.0})
    app.send("serve", rate=100)

    controller = Controller(
        migration, source=PrometheusSource(prometheus.url),
        policy=HealthPolicy(default_rules(min_samples=20), window=60),
        plan=DEFAULT_PLAN, bake=3600, rollback_after=2, store=FileStore.in_dir(state),
    )
    ticks: list[tuple[float, Tick]] = []
    stop = threading.Event()
    failure: list[BaseException] = []

    def watch() -> None:
        try:
            controller.watch(2.0, stop=stop, on_tick=lambda t: ticks.append((time.monotonic(), t)))
        except BaseException as exc:  # surfaced by the test thread below
            failure.append(exc)

    watcher = threading.Thread(target=watch, name="controller", daemon=True)
    try:
        watcher.start()
        # A healthy baseline: the controller must hold (baking), never roll back.
        time.sleep(10)
        baseline = list(ticks)
        assert baseline and all(t.action == "held" for _, t in baseline), \
            [(t.action, t.message) for _, t in baseline]
        assert any(t.verdict.status is Status.HEALTHY for _, t in baseline), \
            [t.message for _, t in baseline]

        # The spike: half of simplified's runs fail from now on.
        app.send("config", error_rate={"simplified": 0.5})
        spike, spike_wall = time.monotonic(), time.time()

        def rolled_back() -> Tick | None:
            if failure:
                raise AssertionError(f"the controller failed: {failure[0]!r}")
            return next((t for _, t in ticks if t.action == "rolled_back"), None)

        tick, _ = wait_for(rolled_back, timeout=60, interval=0.2, what="the controller's rollback")
        rollback_at = next(at for at, t in ticks if t is tick)
        to_rollback = rollback_at - spike
        assert tick.transition is not None and tick.transition.to_phase is Phase.LEGACY
        assert "error_rate" in tick.message, tick.message
        record = FileStore.in_dir(state).snapshot().get(migration)
        assert record is not None and record.phase is Phase.LEGACY
        assert record.history[-1].actor == "controller"

        # The app notices the store within its refresh interval and serves everything on legacy.
        time.sleep(1.5)
        before = app.send("stats")
        time.sleep(3)
        after = app.send("stats")
        assert after["phase"] == "legacy", after
        assert after["served"]["simplified"] == before["served"]["simplified"], (before, after)
        assert after["served"]["legacy"] - before["served"]["legacy"] > 100, (before, after)
        assert after["unexpected_count"] == 0, after

        # The generated alert (for: 30s over a 5m window) fires in Prometheus.
        def fired() -> dict[str, Any] | None:
            alert = _alert(prometheus, migration, "AurumMigrationErrorRate")
            return alert if alert is not None and alert["state"] == "firing" else None

        alert, _ = wait_for(fired, timeout=90, interval=0.5, what="AurumMigrationErrorRate to fire")
        to_alert = time.monotonic() - spike
        to_pending = _epoch(alert["activeAt"]) - spike_wall
        # Meanwhile only legacy has kept serving, as Prometheus itself shows.
        recent = prometheus.values(
            f"sum by ({IMPL}) (increase(aurum_migration_calls_total{selector(migration)}[15s]))",
            IMPL)
    finally:
        stop.set()
        watcher.join(10)
        final = app.send("stop")

    print(f"\n[spike] controller rollback {to_rollback:.1f} s after the spike "
          f"(ticks every 2 s, window 60 s, rollback_after 2): {tick.message}")
    print(f"[spike] AurumMigrationErrorRate pending (activeAt) {to_pending:.1f} s, firing "
          f"{to_alert:.1f} s after the spike (for: 30s; rules evaluated every 1 s)")
    print(f"[spike] calls in the last 15 s per implementation (Prometheus): "
          f"{ {k[0]: round(v, 1) for k, v in recent.items()} }; app totals {final['served']}, "
          f"injected {final['injected_errors']}")
    assert recent.get(("legacy",), 0) > 100, recent
    assert recent.get(("simplified",), 0) == 0, recent
    assert to_rollback < to_alert  # the controller does not wait for the alert's `for`


# --------------------------------------------------------------------- collector outage


def test_collector_outage_never_reaches_callers_and_export_resumes(
        pipeline: Pipeline, start_app: StartApp, unique: str, tmp_path: Path) -> None:
    migration, service = f"e2e_outage_{unique}", f"aurum-e2e-outage-{unique}"
    prometheus, jaeger, collector = pipeline.prometheus, pipeline.jaeger, pipeline.collector
    state = tmp_path / "state"
    set_phase(state, migration, Phase.HYBRID, Rollout(percent=50, compare=10))
    app = start_app(service=service, migration=migration, state_dir=state)
    batch = 5000

    warm = app.send("calls", n=batch)
    assert warm["unexpected_count"] == 0
    app.send("flush")
    wait_scraped(prometheus, migration, warm["calls"])
    wait_for(lambda: True if jaeger.traces(service, limit=1) else None, timeout=30,
             what="the first traces in Jaeger")
    rss_before = app.send("rss")
    made = warm["calls"]
    outage: list[dict[str, Any]] = []
    rss_during: list[dict[str, Any]] = []
    try:
        collector.stop()
        assert not collector.healthy()
        for _ in range(3):
            result = app.send("calls", n=batch)
            outage.append(result)
            made += result["calls"]
            rss_during.append(app.send("rss"))
            time.sleep(1)  # let the exporters try (and fail) a few times
    finally:
        collector.start()
    restarted = time.monotonic()
    restarted_us = int(time.time() * 1_000_000)
    assert collector.healthy()

    after = app.send("calls", n=200)
    made += after["calls"]
    app.send("flush", timeout=60)

    def new_trace() -> bool | None:
        return True if jaeger.traces(service, start_us=restarted_us, limit=5) else None

    _, _ = wait_for(new_trace, timeout=60, what="a trace exported after the collector restart")
    to_trace = time.monotonic() - restarted
    # The SDK's metrics are cumulative: the calls made while the collector was down are not lost.
    wait_scraped(prometheus, migration, made, timeout=60)
    to_series = time.monotonic() - restarted

    failures = sum(r["unexpected_count"] for r in outage)
    latency = [r["seconds"] / r["calls"] * 1e6 for r in outage]
    growth_mb = (rss_during[-1]["rss_kb"] - rss_before["rss_kb"]) / 1024
    last_growth_mb = (rss_during[-1]["rss_kb"] - rss_during[0]["rss_kb"]) / 1024
    print(f"\n[outage] {sum(r['calls'] for r in outage)} calls with the collector down: "
          f"{failures} caller-visible failures; mean {', '.join(f'{v:.0f}' for v in latency)} us "
          f"per call vs {warm['seconds'] / warm['calls'] * 1e6:.0f} us with it up")
    during = ", ".join(f"{r['rss_kb'] / 1024:.1f}" for r in rss_during)
    print(f"[outage] RSS before {rss_before['rss_kb'] / 1024:.1f} MB, during {during} MB (growth "
          f"{growth_mb:+.1f} MB, {last_growth_mb:+.1f} MB over the last two batches)")
    print(f"[outage] after restart: a new trace in Jaeger after {to_trace:.1f} s, every one of "
          f"the {made} calls counted in Prometheus after {to_series:.1f} s")
    assert failures == 0
    assert all(r["ok"] == r["calls"] for r in outage)
    # Bounded: the span queue fills once (2048 spans), then the outage costs no more memory; kept
    # spans would cost ~2 KB each, i.e. ~20 MB over the last 10,000 calls.
    assert growth_mb < 32, (rss_before, rss_during)
    assert last_growth_mb < 8, rss_during


# ------------------------------------------------------------------------------ the demo

def test_the_demo_exports_its_traces_and_metrics(pipeline: Pipeline, unique: str,
                                                 tmp_path: Path) -> None:
    """`aurum-migrate demo` with OTEL_EXPORTER_OTLP_ENDPOINT set: its story is in the backends."""
    import os
    import subprocess
    import sys

    service = f"aurum-demo-{unique}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AURUM_", "OTEL_"))}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": pipeline.otlp_endpoint,
                "OTEL_SERVICE_NAME": service, "AURUM_STATE_DIR": str(tmp_path / "home"),
                "COLUMNS": "200"})
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "aurum_otel.cli", "demo", "--duration", "20",
         "--state-dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "exporting OTLP to" in result.stdout

    wanted = ("migrate settings", "shadow settings", "migrate database", "shadow database",
              "transition database")

    def operations() -> set[str] | None:
        names: set[str] = set()
        for operation in wanted:  # the demo makes thousands of traces: ask for each kind
            response = pipeline.jaeger.session.get(
                f"{pipeline.jaeger.url}/api/traces",
                params={"service": service, "operation": operation, "limit": 5,
                        "lookback": "1h"}, timeout=10)
            if response.status_code != 200:
                return None
            names |= {s["operationName"] for t in response.json().get("data") or []
                      for s in t["spans"]}
        return names if set(wanted) <= names else None

    names, _ = wait_for(operations, timeout=30, what=f"the demo's traces of {service}")
    rollbacks, _ = wait_for(lambda: pipeline.prometheus.values(
        f'aurum_migration_transitions_total{{job="{service}",aurum_migration_reason="health",'
        'aurum_migration_to="legacy"}', "aurum_migration_name") or None,
        timeout=30, what="the demo's rollback in Prometheus")
    calls, _ = wait_for(lambda: pipeline.prometheus.values(
        f'sum by (aurum_migration_name) (aurum_migration_calls_total{{job="{service}"}})',
        "aurum_migration_name") or None, timeout=30, what="the demo's calls in Prometheus")
    print(f"\n[demo] {time.monotonic() - started:.1f} s; span names {sorted(names)}; "
          f"rollbacks {rollbacks}; calls {calls}")
    assert rollbacks == {("database",): 1.0}
    assert calls[("settings",)] > 100 and calls[("database",)] > 100

"""A migration's figures over time from Prometheus range queries (``/api/v1/query_range``).

Rates over a window of a few scrape intervals, evaluated at every ``step``: runs per second and
error rate per implementation, latency quantiles from the span-derived histogram, the mismatch
rate of completed comparisons, and the share of served (authoritative) calls on simplified.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from aurum_otel import semconv
from aurum_otel.errors import AurumOtelError
from aurum_otel.health.promql import COMPARISON, IMPL, selector
from aurum_otel.phase import Role
from aurum_otel.report.model import IMPLEMENTATIONS, MigrationData, Series
from aurum_otel.report.steps import bands_and_markers, configured_split, ratio, thresholds
from aurum_otel.store import Transition

DEFAULT_URL = "http://127.0.0.1:9090"
ROLE = semconv.PROM_LABEL_ROLE


class ReportSourceError(AurumOtelError):
    """A report's data source (Prometheus, Jaeger) could not be read; the message says why."""


def prometheus_url(url: str | None = None) -> str:
    return (url or os.environ.get("AURUM_PROMETHEUS_URL") or DEFAULT_URL).rstrip("/")


def queries(migration: str, window: str) -> dict[str, str]:
    """Every PromQL expression the report asks for one migration."""
    calls = selector(semconv.PROM_CALLS, migration)
    errors = selector(semconv.PROM_CALLS, migration, f'{semconv.PROM_LABEL_OUTCOME}="error"')
    buckets = selector(semconv.PROM_DURATION_BUCKET, migration, f'{IMPL}!=""')
    mismatches = selector(semconv.PROM_COMPARISONS, migration, f'{COMPARISON}="mismatch"')
    compared = selector(semconv.PROM_COMPARISONS, migration, f'{COMPARISON}=~"match|mismatch"')
    served = selector(semconv.PROM_CALLS, migration, f'{ROLE}="{Role.AUTHORITATIVE.value}"')
    served_simplified = selector(semconv.PROM_CALLS, migration, f'{ROLE}="{Role.AUTHORITATIVE.value}"',
                                 f'{IMPL}="simplified"')
    out = {
        "calls": f"sum by ({IMPL}) (rate({calls}[{window}]))",
        # A counter with no error (no mismatch) yet has no series: count it as zero where calls
        # (comparisons) ran, so the rate reads 0 %, not "no data".
        "errors": f"(sum by ({IMPL}) (rate({errors}[{window}])) or sum by ({IMPL}) "
                  f"(rate({calls}[{window}])) * 0) / sum by ({IMPL}) (rate({calls}[{window}])) * 100",
        "mismatch": f"(sum(rate({mismatches}[{window}])) or sum(rate({compared}[{window}])) * 0) / "
                    f"sum(rate({compared}[{window}])) * 100",
        "split": f"(sum(rate({served_simplified}[{window}])) or vector(0)) / "
                 f"sum(rate({served}[{window}])) * 100",
    }
    for q in (0.5, 0.95):
        out[f"p{q * 100:g}"] = (f"histogram_quantile({q:g}, sum by (le, {IMPL}) "
                                f"(rate({buckets}[{window}]))) * 1000")
    return out


class PrometheusRange:
    """Range queries against one Prometheus."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self.url = prometheus_url(url)
        self.timeout = timeout
        self.session = session or requests.Session()

    def matrix(self, expression: str, start: float, end: float, step: float
               ) -> list[dict[str, Any]]:
        try:
            response = self.session.get(
                f"{self.url}/api/v1/query_range", timeout=self.timeout,
                params={"query": expression, "start": f"{start:.3f}", "end": f"{end:.3f}",
                        "step": f"{step:g}"})
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ReportSourceError(
                f"cannot read Prometheus at {self.url} ({type(exc).__name__}: {exc}); start it "
                "or point AURUM_PROMETHEUS_URL / --prometheus-url at it, or use --source file"
            ) from None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise ReportSourceError(f"Prometheus at {self.url} refused a range query "
                                    f"(HTTP {response.status_code}: {error})")
        result = body.get("data", {}).get("result")
        if not isinstance(result, list):
            raise ReportSourceError(f"Prometheus at {self.url} answered a range query without a "
                                    "result matrix")
        return result


def _series_by(result: Sequence[Mapping[str, Any]], label: str | None, grid: Sequence[float]
               ) -> dict[str, tuple[tuple[float, float], ...]]:
    out: dict[str, tuple[tuple[float, float], ...]] = {}
    for item in result:
        key = item.get("metric", {}).get(label, "") if label else ""
        values: dict[float, float] = {}
        for moment, value in item.get("values") or []:
            try:
                values[round(float(moment), 3)] = float(value)
            except (TypeError, ValueError):
                continue
        out[key] = tuple((t, values.get(round(t, 3), math.nan)) for t in grid)
    return out


def gather_prometheus(names: Sequence[str], histories: Mapping[str, Sequence[Transition]], *,
                      start: float, end: float, url: str | None = None,
                      client: PrometheusRange | None = None) -> list[MigrationData]:
    """Every named migration's figures from Prometheus over ``start..end``."""
    client = client or PrometheusRange(url)
    step = max(5.0, math.ceil((end - start) / 240))
    window = f"{int(max(60.0, 4 * step))}s"
    grid = [start + i * step for i in range(int((end - start) // step) + 1)]
    out = []
    for name in names:
        answers = {key: client.matrix(expression, start, end, step)
                   for key, expression in queries(name, window).items()}
        empty = tuple((t, math.nan) for t in grid)
        calls = _series_by(answers["calls"], IMPL, grid)
        errors = _series_by(answers["errors"], IMPL, grid)
        latency = {q: _series_by(answers[q], IMPL, grid) for q in ("p50", "p95")}
        p95 = {impl: dict(latency["p95"].get(impl, empty)) for impl in IMPLEMENTATIONS}
        bands, markers = bands_and_markers(histories.get(name, ()), start, end)
        out.append(MigrationData(
            name, start, end, f"Prometheus {client.url} (rates over {window}, every {step:g} s)",
            calls=tuple(Series(f"{i} (runs/s)", i, calls.get(i, empty)) for i in IMPLEMENTATIONS),
            error_rate=tuple(Series(i, i, errors.get(i, empty)) for i in IMPLEMENTATIONS),
            latency=tuple(Series(f"{i} {q}", i, latency[q].get(i, empty), dashed=q == "p50")
                          for i in IMPLEMENTATIONS for q in ("p50", "p95")),
            ratio=(Series("p95 simplified / legacy", "ratio",
                          tuple((t, ratio(p95["simplified"][t], p95["legacy"][t])) for t in grid)),),
            mismatch=(Series("mismatches / comparisons", "mismatch",
                             _series_by(answers["mismatch"], None, grid).get("", empty)),),
            split=(Series("observed (served by simplified)", "simplified",
                          _series_by(answers["split"], None, grid).get("", empty)),
                   configured_split(bands)),
            bands=bands, markers=markers, limits=thresholds(),
        ))
    return out

"""Health from a Prometheus-compatible backend: the same rules, evaluated by PromQL over HTTP.

Like Flagger's or Argo Rollouts' analysis, each figure is one instant query over the window; the
queries are kept on the verdict so a person can paste them into the backend.
"""

from __future__ import annotations

import math
import os
from typing import Any

import requests

from aurum_otel import semconv
from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.health.stats import SideStats, WindowStats

DEFAULT_URL = "http://127.0.0.1:9090"


class PrometheusUnavailableError(AurumOtelError):
    """The Prometheus HTTP API could not be queried."""


def promql(migration: str, window: float) -> dict[str, str]:
    """The PromQL behind each figure, for ``migration`` over ``window`` seconds."""
    w = f"{max(int(window), 1)}s"
    sel = f'{semconv.PROM_LABEL_NAME}="{_escape(migration)}"'
    impl = semconv.PROM_LABEL_IMPLEMENTATION
    calls = f"sum by ({impl}) (increase({semconv.PROM_CALLS}{{{sel}}}[{w}]))"
    errors = (f"sum by ({impl}) (increase({semconv.PROM_CALLS}{{{sel},"
              f'{semconv.PROM_LABEL_OUTCOME}="error"}}[{w}]))')
    latency = (f"histogram_quantile(0.95, sum by (le, {impl}) "
               f"(increase({semconv.PROM_DURATION_BUCKET}{{{sel}}}[{w}])))")
    comparisons = (f"sum by ({semconv.PROM_LABEL_COMPARISON}) "
                   f"(increase({semconv.PROM_COMPARISONS}{{{sel}}}[{w}]))")
    ratio = (f"sum by ({impl}) (rate({semconv.PROM_CALLS}{{{sel},"
             f'{semconv.PROM_LABEL_OUTCOME}="error"}}[{w}])) / sum by ({impl}) '
             f"(rate({semconv.PROM_CALLS}{{{sel}}}[{w}]))")
    return {"calls": calls, "errors": errors, "latency": latency,
            "comparisons": comparisons, "error_rate": ratio}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusSource:
    """Health figures from Prometheus's HTTP API (``/api/v1/query``).

    Args:
        url: the Prometheus base URL; default ``AURUM_PROMETHEUS_URL`` or http://127.0.0.1:9090.
        timeout: seconds per query.
        quantile: the latency quantile the latency rule reads (0.95).
    """

    name = "prometheus"

    def __init__(self, url: str | None = None, *, timeout: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self.url = (url or os.environ.get("AURUM_PROMETHEUS_URL") or DEFAULT_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigurationError("AURUM_PROMETHEUS_URL", self.url, "an http:// or https:// URL")
        self.timeout = timeout
        self._session = session or requests.Session()

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Run an instant query and return its vector."""
        try:
            response = self._session.get(f"{self.url}/api/v1/query", params={"query": expression},
                                         timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailableError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}); check that it runs "
                "or set AURUM_PROMETHEUS_URL"
            ) from None
        if response.status_code != 200:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} to {expression!r}: "
                f"{response.text[:200]}"
            )
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusUnavailableError(f"Prometheus query failed: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def _by(self, expression: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample in self.query(expression):
            value = float(sample["value"][1])
            out[sample["metric"].get(label, "")] = 0.0 if math.isnan(value) else value
        return out

    def stats(self, migration: str, window: float) -> WindowStats:
        queries = promql(migration, window)
        impl = semconv.PROM_LABEL_IMPLEMENTATION
        calls = self._by(queries["calls"], impl)
        errors = self._by(queries["errors"], impl)
        comparisons = self._by(queries["comparisons"], semconv.PROM_LABEL_COMPARISON)
        quantiles: dict[str, float] = {}
        for sample in self.query(queries["latency"]):
            value = float(sample["value"][1])
            quantiles[f"{sample['metric'].get(impl, '')}:0.95"] = value
        return WindowStats(
            migration, window,
            legacy=SideStats(calls.get("legacy", 0.0), errors.get("legacy", 0.0)),
            simplified=SideStats(calls.get("simplified", 0.0), errors.get("simplified", 0.0)),
            matches=comparisons.get("match", 0.0),
            mismatches=comparisons.get("mismatch", 0.0),
            source=f"prometheus {self.url}",
            queries={"error_rate": queries["error_rate"], "latency": queries["latency"],
                     "mismatch_rate": queries["comparisons"]},
            quantiles=quantiles,
        )

"""Health from a Prometheus-compatible backend: the same rules, evaluated by PromQL over HTTP.

Like Flagger's or Argo Rollouts' analysis, each figure is one instant query over the window; the
queries (built by :mod:`aurum_otel.health.promql`, shared with the generated rules) are kept on
the verdict so a person can paste them into the backend. A latency quantile is queried when a
rule asks for it, for the quantile it asks for. An answer that is not what the HTTP API documents
raises :class:`PrometheusAnswerError` naming the query and what was wrong.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from aurum_otel.errors import AurumOtelError, ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.metric import Measurements
from aurum_otel.health.stats import PairStats, SideStats, SplitOf, SplitStats, WindowStats
from aurum_otel.phase import Implementation

DEFAULT_URL = "http://127.0.0.1:9090"


class PrometheusUnavailableError(AurumOtelError):
    """The Prometheus HTTP API could not be queried."""


class PrometheusAnswerError(PrometheusUnavailableError):
    """Prometheus (or what answered in its place) sent something that is not a query result.

    Attributes:
        query: the PromQL expression asked.
        reason: what was wrong with the answer.
    """

    def __init__(self, url: str, query: str, reason: str) -> None:
        self.query, self.reason = query, reason
        super().__init__(
            f"the answer of {url} to {query!r} is not a Prometheus query result: {reason}; "
            "check that AURUM_PROMETHEUS_URL points at Prometheus's HTTP API")


def promql_queries(migration: str, window: float) -> dict[str, str]:
    """The PromQL behind each figure, for ``migration`` over ``window`` seconds (p95 latency)."""
    return promql.source_queries(migration, window)


class PrometheusSource:
    """Health figures from Prometheus's HTTP API (``/api/v1/query``).

    Args:
        url: the Prometheus base URL; default ``AURUM_PROMETHEUS_URL`` or http://127.0.0.1:9090.
        timeout: seconds per query.
        split_of: ``name -> configured split`` (e.g. from the store); the split is then counted
            since the step began. Without it, the configured split is the
            ``aurum_migration_rollout_percent`` gauge where it held one value over the window
            (what the generated alert reads), and not judged where there is none.
        clock: Unix seconds (for a step's age), injected for tests.
    """

    name = "prometheus"

    def __init__(self, url: str | None = None, *, timeout: float = 5.0,
                 session: requests.Session | None = None, split_of: SplitOf | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._split_of, self._clock = split_of, clock
        self.url = (url or os.environ.get("AURUM_PROMETHEUS_URL") or DEFAULT_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigurationError("AURUM_PROMETHEUS_URL", self.url, "an http:// or https:// URL")
        self.timeout = timeout
        self._session = session or requests.Session()
        self.at: float | None = None  # evaluate as of this Unix time (a backtest); None: now

    def as_of(self, at: float) -> PrometheusSource:
        """The same source, every query evaluated as of ``at`` (Unix seconds): for backtests."""
        past = copy.copy(self)
        past.at = at
        past._clock = lambda: at
        return past

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Run an instant query and return its vector (validated)."""
        try:
            params = {"query": expression}
            if self.at is not None:
                params["time"] = f"{self.at:.3f}"
            response = self._session.get(f"{self.url}/api/v1/query", params=params,
                                         timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailableError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}); check that it runs "
                "or set AURUM_PROMETHEUS_URL"
            ) from None
        if response.status_code != 200:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} to {expression!r}: "
                f"{response.text[:200]!r}"
            )
        return _vector(self.url, expression, response.content)

    def _by(self, expression: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample in self.query(expression):
            value = sample["value"]
            if value < 0:
                raise PrometheusAnswerError(self.url, expression,
                                            f"a negative increase ({value:g}) of a counter")
            key = sample["metric"].get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out

    def _pairs(self, queries: Mapping[str, str]) -> PairStats | None:
        """The window's shadow pairs (``None`` without any), from the pair counter by side and
        the cumulative ratio buckets (the median is interpolated as histogram_quantile does)."""
        counts: dict[tuple[str, str], float] = {}
        for sample in self.query(queries["pairs"]):
            value, labels = sample["value"], sample["metric"]
            if value < 0:
                raise PrometheusAnswerError(self.url, queries["pairs"],
                                            f"a negative increase ({value:g}) of a counter")
            key = (labels.get(promql.FAILED, ""), labels.get(promql.SLOWER, ""))
            counts[key] = counts.get(key, 0.0) + value
        total = sum(counts.values())
        if not total > 0 and not math.isnan(total):
            return None
        buckets: dict[float, float] = {}
        for bound, count in self._by(queries["pair_ratios"], "le").items():
            if bound == "":
                continue  # not a bucket (histogram_quantile ignores a series without le too)
            try:
                buckets[float(bound)] = count
            except ValueError:
                raise PrometheusAnswerError(self.url, queries["pair_ratios"],
                                            f"a bucket bound that is not a number: {bound!r}"
                                            ) from None

        def where(index: int, value: str) -> float:
            return sum(v for k, v in counts.items() if k[index] == value)

        return PairStats(total, where(0, "legacy"), where(0, "simplified"),
                         where(1, "simplified"), where(1, "legacy"),
                         tuple(sorted(buckets.items())))

    def stats(self, migration: str, window: float) -> WindowStats:
        queries = promql_queries(migration, window)
        impl = promql.IMPL
        calls = self._by(queries["calls"], impl)
        errors = self._by(queries["errors"], impl)
        comparisons = self._by(queries["comparisons"], promql.COMPARISON)
        return WindowStats(
            migration, window,
            legacy=SideStats(calls.get("legacy", 0.0), errors.get("legacy", 0.0)),
            simplified=SideStats(calls.get("simplified", 0.0), errors.get("simplified", 0.0)),
            matches=comparisons.get("match", 0.0),
            mismatches=comparisons.get("mismatch", 0.0),
            source=f"prometheus {self.url}",
            queries={"error_rate": queries["error_rate"], "mismatch_rate": queries["comparisons"],
                     "paired:errors": queries["pairs"],
                     "paired:latency": queries["paired:latency"]},
            backend=_Latency(self, migration, window),
            split=self._split(migration, window),
            metrics=Measurements(self, migration),
            pairs=self._pairs(queries),
        )

    def _split(self, migration: str, window: float) -> SplitStats | None:
        """The authoritative split over the window (since the step began, when known)."""
        configured = self._split_of(migration) if self._split_of is not None else None
        percent, step, counted = None, "", window
        if configured is not None:
            percent, step = configured.percent, configured.step
            if configured.since is not None:
                counted = min(window, max(self._clock() - configured.since, 1.0))
        else:
            shares = [s["value"] for s in
                      self.query(promql.configured_share(promql.duration(window), migration))]
            if len(shares) != 1 or not 0 <= shares[0] <= 1:
                return None  # no gauge, or one that changed within the window: not judged
            percent = shares[0] * 100
        expression = promql.routed(promql.duration(counted), promql.IMPL, migration)
        routed = self._by(expression, promql.IMPL)
        # The gauge at the evaluation instant; absent: the calls carried no routing key (0/0).
        keys = self._by(promql.routing_keys(migration), promql.IMPL)
        return SplitStats(percent, routed.get("legacy", 0.0), routed.get("simplified", 0.0),
                          counted, step, expression, keys.get("legacy", 0.0),
                          keys.get("simplified", 0.0))


class _Latency:
    """Latency quantiles of one evaluation, queried on demand, once per quantile."""

    def __init__(self, source: PrometheusSource, migration: str, window: float) -> None:
        self._source, self._migration, self._window = source, migration, window
        self._answers: dict[float, Mapping[str, float]] = {}

    def query(self, q: float) -> str:
        return promql.latency(q, promql.duration(self._window), promql.IMPL, self._migration)

    def quantile(self, implementation: Implementation, q: float) -> float | None:
        if q not in self._answers:
            expression = self.query(q)
            self._answers[q] = {s["metric"].get(promql.IMPL, ""): s["value"]
                                for s in self._source.query(expression)}
        value = self._answers[q].get(implementation.value)
        return value if value is not None and math.isfinite(value) and value >= 0 else None


def _vector(url: str, query: str, content: bytes) -> list[dict[str, Any]]:
    """The samples of an instant-vector answer, each ``{"metric": {...}, "value": float}``."""
    def bad(reason: str) -> PrometheusAnswerError:
        return PrometheusAnswerError(url, query, reason)

    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        start = text.lstrip()[:40]
        raise bad(f"not JSON ({exc.msg} at {exc.pos}; starts {start!r})") from None
    if not isinstance(body, dict):
        raise bad(f"a JSON {type(body).__name__}, not an object")
    if body.get("status") != "success":
        raise PrometheusUnavailableError(
            f"Prometheus query {query!r} failed: {body.get('errorType', '')} "
            f"{body.get('error', body.get('status'))}")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise bad("no data.result list")
    if data.get("resultType", "vector") != "vector":
        raise bad(f"a {data.get('resultType')!r} result, not a vector")
    samples = []
    for sample in data["result"]:
        metric = sample.get("metric") if isinstance(sample, dict) else None
        value = sample.get("value") if isinstance(sample, dict) else None
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise bad(f"a sample without metric and [time, value]: {str(sample)[:80]}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metric.items()):
            raise bad(f"labels that are not strings: {str(metric)[:80]}")
        raw = value[1]
        try:
            if not isinstance(raw, str):
                raise ValueError(raw)
            number = float(raw)
        except ValueError:
            raise bad(f"a value that is not a number: {str(raw)[:40]!r}") from None
        samples.append({"metric": metric, "value": number})
    return samples

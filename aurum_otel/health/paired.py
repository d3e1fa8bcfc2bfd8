"""Paired shadow statistics (issue 16.2): on shadowed calls both implementations ran on the same
input, so they can be compared pair by pair, which needs far fewer calls than comparing two
populations.

Errors: McNemar's test on the discordant pairs (exactly one side failed): with ``b`` pairs where
only legacy failed and ``c`` where only simplified did, simplified is worse when ``c`` is
significantly more than half of ``b + c`` and ``(c - b) / pairs`` exceeds ``max_increase``.
Latency: a sign test on the untied pairs (simplified slower in significantly more than half),
the median per-pair duration ratio above ``max_ratio``, and a slowdown that matters: the median
ratio's extra time on legacy's median latency, ``(ratio - 1) * legacy p50``, above
``min_increase`` (5 ms, as the latency rule's), so a 0.3 ms call that takes 1.2 ms in its shadow
(the shadow runs on a worker thread, and very short calls differ by their overhead) is no reason
to roll back.

Both tests are one-sided, on the normal approximation with continuity correction,
``z = (c - b - 1) / sqrt(b + c)`` against the normal quantile at ``confidence``: PromQL cannot
sum a binomial tail, and the in-process rule, the Prometheus source and the generated alert
(:meth:`PairedRule.alert`, over :meth:`PairedRule.recordings`) must be the same test. With
``min_samples`` pairs (20 by default) the approximation is slightly conservative against the
exact tail (it needs 8 uniformly slower pairs where the exact test needs 7).

A source without pair figures (or a window without pairs) does not judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

from aurum_otel.errors import ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.promql import RecordedNames
from aurum_otel.health.rules import DEFAULT_MIN_SAMPLES, Rule, leaves
from aurum_otel.health.stats import PairStats, WindowStats, histogram_quantile
from aurum_otel.health.verdict import RuleResult, Status
from aurum_otel.phase import Implementation, Phase, Rollout


def sign_z(more: float, fewer: float) -> float:
    """The one-sided statistic of McNemar's and the sign test with continuity correction:
    ``(more - fewer - 1) / sqrt(more + fewer)``; ``-inf`` without a discordant pair."""
    if more + fewer <= 0:
        return -math.inf
    return (more - fewer - 1) / math.sqrt(more + fewer)


@dataclass(frozen=True)
class PairedRule(Rule):
    """Simplified no worse than legacy on the same inputs: errors (McNemar) and latency (sign)."""

    max_increase: float = 0.01
    max_ratio: float = 1.5
    confidence: float = 0.99
    min_samples: int = DEFAULT_MIN_SAMPLES  # pairs (discordant pairs for the error test)
    min_increase: float = 0.005  # seconds: the least extra time on legacy's median that counts
    name = "paired"
    alert_name = "AurumMigrationPaired"

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        if not 0 < options.get("confidence", 0.99) < 1:
            raise ConfigurationError(f"{where}.confidence", options["confidence"],
                                     "a number in (0, 1)")

    @property
    def critical(self) -> float:
        """The normal quantile at ``confidence`` above which a one-sided ``z`` is significant,
        as the alert spells it (10 significant digits), so every evaluator compares alike."""
        return float(f"{NormalDist().inv_cdf(self.confidence):.10g}")

    def quantiles(self) -> tuple[float, ...]:
        return (0.5,)  # legacy's median latency, for the slowdown that matters

    def recordings(self, names: RecordedNames) -> list[dict[str, str]]:
        w, name, by_side = names.range, promql.NAME, names.pairs_by_side
        by = f"{name}, {promql.FAILED}, {promql.SLOWER}"

        def part(record: str, label: str, value: str) -> dict[str, str]:
            # 0 rather than nothing where no pair had the label's value (the series exist from a
            # migration's first pair on; this keeps the alert's arithmetic defined regardless)
            return {"record": record, "expr": f'sum by ({name}) ({by_side}{{{label}="{value}"}})'
                                              f" or {names.pairs} * 0"}

        return [
            {"record": by_side, "expr": promql.pairs(w, by)},
            {"record": names.pairs, "expr": f"sum by ({name}) ({by_side})"},
            part(names.legacy_only_failed, promql.FAILED, "legacy"),
            part(names.simplified_only_failed, promql.FAILED, "simplified"),
            part(names.simplified_slower, promql.SLOWER, "simplified"),
            part(names.simplified_faster, promql.SLOWER, "legacy"),
            {"record": names.pair_ratio_median, "expr": promql.median_ratio(w, name)},
        ]

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        n, b, c = names.pairs, names.legacy_only_failed, names.simplified_only_failed
        s, f, m = names.simplified_slower, names.simplified_faster, names.pair_ratio_median
        z = f"{self.critical:.10g}"
        errors = (f"((({c} - {b} - 1) / sqrt({c} + {b}) > {z})"
                  f" and (({c} - {b}) / {n} > {self.max_increase:.10g})"
                  f" and {n} >= {self.min_samples})")
        matters = ""
        if self.min_increase > 0:  # the extra time on legacy's median latency
            legacy_p50 = promql.side(names.latency(0.5), "legacy")
            matters = (f" and (({m} - 1) * on({promql.NAME}) {legacy_p50}"
                       f" > {self.min_increase:.10g})")
        latency = (f"((({s} - {f} - 1) / sqrt({s} + {f}) > {z})"
                   f" and ({m} > {self.max_ratio:.10g}){matters}"
                   f" and ({s} + {f}) >= {self.min_samples})")
        return (self.alert_name, f"{errors} or {latency}",
                f"simplified worse than legacy on the same inputs (shadow pairs: McNemar or "
                f"sign test at {self.confidence:g})")

    def check(self, stats: WindowStats) -> list[RuleResult]:
        pairs = stats.pairs
        if pairs is None:
            return [RuleResult(self.name, Status.HEALTHY,
                               f"not judged: no shadow pairs from {stats.source} in the window",
                               None, None, stats.window, {}, stats.source)]
        figures = (pairs.pairs, pairs.legacy_only_failed, pairs.simplified_only_failed,
                   pairs.slower, pairs.faster, *(count for _, count in pairs.ratios))
        if not all(math.isfinite(x) and x >= 0 for x in figures):
            return [RuleResult(self.name, Status.INCONCLUSIVE,
                               f"pair figures from {stats.source} cannot be judged: {pairs}",
                               None, None, stats.window, {}, stats.source)]
        return [self.errors(pairs, stats.window, stats.queries.get("paired:errors",
                                                                   stats.source)),
                self.latency(pairs, stats.window, stats.queries.get("paired:latency",
                                                                    stats.source),
                             lambda: stats.quantile(Implementation.LEGACY, 0.5))]

    def errors(self, pairs: PairStats, window: float, query: str) -> RuleResult:
        b, c = pairs.legacy_only_failed, pairs.simplified_only_failed
        samples = {"pairs": pairs.pairs, "legacy_only_failed": b, "simplified_only_failed": c}
        name = f"{self.name}:errors"
        if pairs.pairs < self.min_samples:
            return RuleResult(name, Status.INCONCLUSIVE,
                              f"{pairs.pairs:g} shadow pairs, {self.min_samples} needed",
                              None, self.max_increase, window, samples, query)
        increase = (c - b) / pairs.pairs
        z = sign_z(c, b)
        worse = z > self.critical and increase > self.max_increase
        test = (f"McNemar z = {z:.3g}, significant above {self.critical:.3g}" if b + c
                else "no pair where only one side failed")
        message = (f"only simplified failed in {c:g} and only legacy in {b:g} of "
                   f"{pairs.pairs:g} pairs: {increase:+.1%} ({test}; at most "
                   f"+{self.max_increase:.0%})")
        return RuleResult(name, Status.UNHEALTHY if worse else Status.HEALTHY, message,
                          increase, self.max_increase, window, samples, query)

    def latency(self, pairs: PairStats, window: float, query: str,
                legacy_p50: float | Callable[[], float | None] | None = None) -> RuleResult:
        """The sign test and the median ratio; ``legacy_p50`` (seconds, or how to get it: asked
        only for a significant slowdown, a query on the Prometheus source) tells whether the
        slowdown matters (``None``: unknown, so only a ``min_increase`` of 0 can condemn)."""
        untied = pairs.slower + pairs.faster
        samples = {"pairs": pairs.pairs, "slower": pairs.slower, "faster": pairs.faster}
        name = f"{self.name}:latency"
        median = histogram_quantile(0.5, pairs.ratios)
        if untied < self.min_samples or median is None:
            return RuleResult(name, Status.INCONCLUSIVE,
                              f"{untied:g} untied shadow pairs, {self.min_samples} needed",
                              median, self.max_ratio, window, samples, query)
        z = sign_z(pairs.slower, pairs.faster)
        slower = z > self.critical and median > self.max_ratio
        if callable(legacy_p50):
            legacy_p50 = legacy_p50() if slower and self.min_increase > 0 else None
        if legacy_p50 is not None and not (math.isfinite(legacy_p50) and legacy_p50 >= 0):
            legacy_p50 = None  # NaN (an empty window), negative or infinite: not a latency
        message = (f"simplified slower in {pairs.slower / untied:.0%} of {untied:g} pairs "
                   f"(sign test z = {z:.3g}, significant above {self.critical:.3g}), median "
                   f"ratio {median:.2g}x (at most {self.max_ratio:g}x)")
        status = Status.UNHEALTHY if slower else Status.HEALTHY
        if slower and self.min_increase > 0:
            if legacy_p50 is None:  # slower, but whether it matters cannot be told
                status = Status.INCONCLUSIVE
                message += (f", and legacy's median latency is unknown: whether that exceeds "
                            f"the {self.min_increase * 1000:g} ms that counts (min_increase) "
                            "cannot be told")
            elif (extra := (median - 1) * legacy_p50) <= self.min_increase:
                status = Status.HEALTHY
                message += (f", but about {extra * 1000:+.2g} ms on legacy's median "
                            f"{legacy_p50 * 1000:.2g} ms: under the {self.min_increase * 1000:g}"
                            " ms that counts (min_increase)")
        return RuleResult(name, status, message, median, self.max_ratio, window, samples, query)


def is_shadow_step(phase: Phase, rollout: Rollout) -> bool:
    """Hybrid with every call served by legacy and compared: where pairs are judged too."""
    return phase is Phase.HYBRID and rollout.percent == 0 and rollout.compare > 0


def with_paired(policy: HealthPolicy) -> HealthPolicy:
    """``policy`` and the paired rule (with the policy's minimum samples), unless it has one:
    how a shadow step is judged (the controller, ``aurum-migrate health``, the backtest)."""
    found = leaves(policy.rules)
    if any(isinstance(leaf, PairedRule) for leaf in found):
        return policy
    min_samples = next((leaf.min_samples for leaf in found  # type: ignore[attr-defined]
                        if isinstance(getattr(leaf, "min_samples", None), int)),
                       PairedRule.min_samples)
    return HealthPolicy(policy.rules & PairedRule(min_samples=min_samples), policy.window)

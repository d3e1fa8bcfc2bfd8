"""Paired shadow statistics (issue 16.2): on shadowed calls both implementations ran on the same
input, so they can be compared pair by pair, which needs far fewer calls than comparing two
populations.

Errors: McNemar's exact test on the discordant pairs (exactly one side failed): with ``b`` pairs
where only legacy failed and ``c`` where only simplified did, simplified is worse when ``c`` is
significantly more than half of ``b + c`` (one-sided binomial) and ``(c - b) / pairs`` exceeds
``max_increase``. Latency: a sign test on the pairs (simplified slower in significantly more
than half of the untied pairs) and the median per-pair ratio above ``max_ratio``.

The figures (:class:`PairStats`) come from the call path, which does not count pairs yet; a
source without them does not judge (see the module's rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from aurum_otel.errors import ConfigurationError
from aurum_otel.health.rules import DEFAULT_MIN_SAMPLES, Rule
from aurum_otel.health.stats import PairStats, WindowStats, histogram_quantile
from aurum_otel.health.verdict import RuleResult, Status


def binomial_tail(k: int, n: int) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, 1/2)``: the one-sided exact p-value of McNemar's and
    the sign test (exact sums in log space, so thousands of pairs stay accurate)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


@dataclass(frozen=True)
class PairedRule(Rule):
    """Simplified no worse than legacy on the same inputs: errors (McNemar) and latency (sign)."""

    max_increase: float = 0.01
    max_ratio: float = 1.5
    confidence: float = 0.99
    min_samples: int = DEFAULT_MIN_SAMPLES  # pairs (discordant pairs for the error test)
    name = "paired"
    alert_name = "AurumMigrationPaired"

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        if not 0 < options.get("confidence", 0.99) < 1:
            raise ConfigurationError(f"{where}.confidence", options["confidence"],
                                     "a number in (0, 1)")

    def check(self, stats: WindowStats) -> list[RuleResult]:
        pairs = stats.pairs
        if pairs is None:
            return [RuleResult(self.name, Status.HEALTHY,
                               f"not judged: {stats.source} does not count shadow pairs",
                               None, None, stats.window, {}, stats.source)]
        return [self.errors(pairs, stats.window, stats.source),
                self.latency(pairs, stats.window, stats.source)]

    def errors(self, pairs: PairStats, window: float, query: str) -> RuleResult:
        b, c = int(pairs.legacy_only_failed), int(pairs.simplified_only_failed)
        samples = {"pairs": pairs.pairs, "legacy_only_failed": b, "simplified_only_failed": c}
        name = f"{self.name}:errors"
        if pairs.pairs < self.min_samples:
            return RuleResult(name, Status.INCONCLUSIVE,
                              f"{pairs.pairs:g} shadow pairs, {self.min_samples} needed",
                              None, self.max_increase, window, samples, query)
        increase = (c - b) / pairs.pairs
        p = binomial_tail(c, b + c)
        worse = p < 1 - self.confidence and increase > self.max_increase
        message = (f"only simplified failed in {c} and only legacy in {b} of {pairs.pairs:g} "
                   f"pairs: {increase:+.1%} (McNemar p = {p:.2g}, at most "
                   f"+{self.max_increase:.0%})")
        return RuleResult(name, Status.UNHEALTHY if worse else Status.HEALTHY, message,
                          increase, self.max_increase, window, samples, query)

    def latency(self, pairs: PairStats, window: float, query: str) -> RuleResult:
        untied = int(pairs.slower + pairs.faster)
        samples = {"pairs": pairs.pairs, "slower": pairs.slower, "faster": pairs.faster}
        name = f"{self.name}:latency"
        median = histogram_quantile(0.5, pairs.ratios)
        if untied < self.min_samples or median is None:
            return RuleResult(name, Status.INCONCLUSIVE,
                              f"{untied} untied shadow pairs, {self.min_samples} needed",
                              median, self.max_ratio, window, samples, query)
        p = binomial_tail(int(pairs.slower), untied)
        worse = p < 1 - self.confidence and median > self.max_ratio
        message = (f"simplified slower in {pairs.slower / untied:.0%} of {untied} pairs "
                   f"(sign test p = {p:.2g}), median ratio {median:.2g}x (at most "
                   f"{self.max_ratio:g}x)")
        return RuleResult(name, Status.UNHEALTHY if worse else Status.HEALTHY, message,
                          median, self.max_ratio, window, samples, query)

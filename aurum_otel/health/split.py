"""Split integrity: does simplified serve the share of authoritative calls it was configured to?

A sample-ratio mismatch (SRM) is what progressive-delivery tools call a split that silently went
wrong: every call sharing one routing key, a key extractor returning a constant, a biased bucket.
Every other rule can say healthy while 0 % of the calls reach simplified at a configured 10 %.
The test is Pearson's chi-squared goodness of fit with one degree of freedom:
``(S - N p)^2 / (N p (1 - p))`` against the chi-squared quantile at ``confidence``, on the
authoritative calls as routed (``S`` simplified of ``N``) since the step began, within the window.
The same test is written in PromQL (:meth:`SplitRule.alert`) over the recording rules of
:meth:`SplitRule.recordings`; at a configured 0 % or 100 % any call on the other side is a
mismatch (the statistic is infinite, in Python and in PromQL alike).

Too few calls (fewer than ``min_samples``, or fewer than ``min_expected`` expected on a side, the
textbook condition for the chi-squared approximation) is inconclusive, with that reason. A source
that does not know the configured split (none was given to it) does not judge the split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

from aurum_otel.errors import ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.promql import RecordedNames, side
from aurum_otel.health.rules import DEFAULT_MIN_SAMPLES, Rule
from aurum_otel.health.stats import WindowStats
from aurum_otel.health.verdict import RuleResult, Status


def chi_squared(simplified: float, calls: float, share: float) -> float:
    """Pearson's statistic of ``simplified`` of ``calls`` against an expected ``share`` (0-1);
    infinite when the expected share is 0 or 1 and a call went the other way."""
    expected = calls * share
    variance = calls * share * (1 - share)
    deviation = simplified - expected
    if variance <= 0:
        return 0.0 if deviation == 0 else math.inf
    return deviation * deviation / variance


def p_value(statistic: float) -> float:
    """The chi-squared (one degree of freedom) upper-tail probability of ``statistic``."""
    if math.isinf(statistic):
        return 0.0
    return 2 * (1 - NormalDist().cdf(math.sqrt(statistic)))


@dataclass(frozen=True)
class SplitRule(Rule):
    """The observed authoritative split matches the configured percent (chi-squared, 1 df).

    Unhealthy when the split differs from the configured percent at ``confidence`` (default
    99.9 %: a healthy split is condemned once in a thousand evaluations, a broken one at once).
    """

    confidence: float = 0.999
    min_samples: int = DEFAULT_MIN_SAMPLES
    min_expected: float = 5.0
    name = "split"
    alert_name = "AurumMigrationSplit"

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        if not 0 < options.get("confidence", 0.999) < 1:
            raise ConfigurationError(f"{where}.confidence", options["confidence"],
                                     "a number in (0, 1), e.g. 0.999")

    @property
    def critical(self) -> float:
        """The chi-squared (1 df) value above which the split is a mismatch, as the alert
        spells it (10 significant digits), so both evaluators compare against the same number."""
        z = NormalDist().inv_cdf(1 - (1 - self.confidence) / 2)
        return float(f"{z * z:.10g}")

    def recordings(self, names: RecordedNames) -> list[dict[str, str]]:
        w, name = names.range, promql.NAME
        calls, simplified = names.split_calls, names.split_simplified
        return [
            {"record": names.routed, "expr": promql.routed(w, f"{name}, {promql.IMPL}")},
            {"record": calls, "expr": f"sum by ({name}) ({names.routed})"},
            # 0 where no call reached simplified: a split that serves 0 % is the case to catch.
            {"record": simplified,
             "expr": f"sum by ({name}) ({side(names.routed, 'simplified')}) or {calls} * 0"},
            {"record": names.split_configured, "expr": promql.configured_share(w)},
        ]

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        n, s, p = names.split_calls, names.split_simplified, names.split_configured
        expr = (f"(({s} - {n} * {p}) ^ 2 / ({n} * {p} * (1 - {p})) > {self.critical:.10g})"
                f" and {n} >= {self.min_samples}"
                f" and ((({n} * {p} >= {self.min_expected:g})"
                f" and ({n} * (1 - {p}) >= {self.min_expected:g}))"
                f" or ({p} * (1 - {p}) == 0))")
        return (self.alert_name, expr,
                f"authoritative split differs from the configured percent "
                f"(sample-ratio mismatch at {self.confidence:g})")

    def check(self, stats: WindowStats) -> list[RuleResult]:
        split = stats.split
        if split is None:
            return [RuleResult(self.name, Status.HEALTHY,
                               f"not judged: {stats.source} was not told the configured split",
                               None, None, stats.window, {}, stats.source)]
        samples = {"legacy": split.legacy, "simplified": split.simplified}
        share, calls = split.percent / 100, split.calls
        scope = f"in {split.window:g} s" + (f" of step {split.step}" if split.step else "")
        query = split.query or stats.source

        def result(status: Status, message: str, value: float | None) -> RuleResult:
            return RuleResult(self.name, status, message, value, share, split.window,
                              samples, query)

        if calls < self.min_samples:
            return [result(Status.INCONCLUSIVE,
                           f"{calls:g} authoritative calls {scope}, {self.min_samples} needed to "
                           f"judge the split (configured {split.percent:g} %)", None)]
        observed = split.simplified / calls
        expected = (calls * share, calls * (1 - share))
        if 0 < share < 1 and min(expected) < self.min_expected:
            return [result(Status.INCONCLUSIVE,
                           f"{calls:g} authoritative calls {scope} expect only "
                           f"{min(expected):.1f} on one side at {split.percent:g} %; the "
                           f"chi-squared test needs {self.min_expected:g}", observed)]
        statistic = chi_squared(split.simplified, calls, share)
        figures = (f"simplified served {observed:.1%} of {calls:g} authoritative calls {scope}, "
                   f"configured {split.percent:g} % (expected {expected[0]:.1f}); "
                   f"chi-squared {statistic:.3g}, p = {p_value(statistic):.2g}")
        if statistic > self.critical:
            return [result(Status.UNHEALTHY,
                           f"{figures}: sample-ratio mismatch at {self.confidence:g}. The routing "
                           "does not split as configured: check the routing key (one key for every"
                           " call routes every call alike) and the key extractor", observed)]
        return [result(Status.HEALTHY, f"{figures}: the split is as configured", observed)]

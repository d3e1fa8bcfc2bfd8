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

Calls routed by a routing key are judged by **distinct keys**, not by calls: a key's calls all go
one way, so they are not independent draws, and a few heavy keys would condemn a correct split
by calls. The keys are the routing keys each side served since the step began (the call path
keeps their digests, the first 4,096 of a step, and exports the counts as the
``aurum_migration_routing_keys`` gauge); the same chi-squared test runs on them. Too few
distinct keys to trust the split (one key for every call: a key extractor returning a constant)
is inconclusive with that reason, so the controller holds. A router that ignores the key sends
a key both ways, counted on both sides: the keys' split is then far from the configured one.
Calls without a key (split per call) are judged by calls.

Too few calls (fewer than ``min_samples``, or fewer than ``min_expected`` expected on a side, the
textbook condition for the chi-squared approximation) is inconclusive, with that reason. A source
that does not know the configured split (none was given to it) does not judge the split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

from aurum_otel.errors import ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.promql import RecordedNames, side
from aurum_otel.health.rules import DEFAULT_MIN_SAMPLES, Rule
from aurum_otel.health.stats import SplitStats, WindowStats
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
            # Distinct routing keys of the step, of the process that saw the most of them.
            {"record": names.routing_keys, "expr": promql.routing_keys()},
            {"record": names.split_keys, "expr": f"sum by ({name}) ({names.routing_keys})"},
            {"record": names.split_keys_simplified,
             "expr": f"sum by ({name}) ({side(names.routing_keys, 'simplified')})"
                     f" or {names.split_keys} * 0"},
        ]

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        n, p, keys = names.split_calls, names.split_configured, names.split_keys
        by_calls = self._mismatch(n, names.split_simplified, p, self.min_samples)
        by_keys = self._mismatch(keys, names.split_keys_simplified, p, 1)
        expr = (f"(({by_calls}) unless on({promql.NAME}) ({keys} > 0))"
                f" or (({by_keys}) and on({promql.NAME}) ({n} >= {self.min_samples}))")
        return (self.alert_name, expr,
                f"authoritative split differs from the configured percent "
                f"(sample-ratio mismatch at {self.confidence:g})")

    def _mismatch(self, n: str, s: str, p: str, least: int) -> str:
        """PromQL: ``s`` of ``n`` (at least ``least``) is a sample-ratio mismatch against
        share ``p``."""
        return (f"(({s} - {n} * {p}) ^ 2 / ({n} * {p} * (1 - {p})) > {self.critical:.10g})"
                f" and {n} >= {least}"
                f" and ((({n} * {p} >= {self.min_expected:g})"
                f" and ({n} * (1 - {p}) >= {self.min_expected:g}))"
                f" or ({p} * (1 - {p}) == 0))")

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
        if split.keys > 0:
            samples.update(legacy_keys=split.legacy_keys or 0.0,
                           simplified_keys=split.simplified_keys or 0.0)
            return [self._by_keys(split, scope, result)]
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

    def _by_keys(self, split: SplitStats, scope: str,
                 result: Callable[[Status, str, float | None], RuleResult]) -> RuleResult:
        keys, share = split.keys, split.percent / 100
        simplified = split.simplified_keys or 0.0
        observed = simplified / keys
        calls = (f"(by calls {split.simplified / split.calls:.1%} of {split.calls:g}, which a few "
                 "heavy keys can sway)")
        expected = (keys * share, keys * (1 - share))
        if 0 < share < 1 and min(expected) < self.min_expected:
            needed = math.ceil(self.min_expected / min(share, 1 - share))
            return result(Status.INCONCLUSIVE,
                          f"{keys:g} distinct routing key{'s' if keys != 1 else ''} since the "
                          f"step began: too few to trust a {split.percent:g} % split ({needed} "
                          f"needed); simplified served {observed:.1%} of them {calls}. One key "
                          "for every call routes every call alike: check the key extractor",
                          observed)
        statistic = chi_squared(simplified, keys, share)
        figures = (f"simplified served {observed:.1%} of {keys:g} distinct routing keys since the "
                   f"step began, configured {split.percent:g} % (expected {expected[0]:.1f}) "
                   f"{calls}; chi-squared {statistic:.3g}, p = {p_value(statistic):.2g}")
        if statistic > self.critical:
            return result(Status.UNHEALTHY,
                          f"{figures}: sample-ratio mismatch at {self.confidence:g}. The routing "
                          "does not split keys as configured: check that the router routes by the"
                          " key (a key served by both sides is counted on both)", observed)
        return result(Status.HEALTHY, f"{figures}: the split is as configured", observed)


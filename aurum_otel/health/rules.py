"""Health rules: small objects that judge a :class:`WindowStats`, composed with ``&`` and ``|``.

The defaults: simplified error rate at most legacy's + 1 point and at most 5 %; simplified p95 at
most 1.5 x legacy's; mismatch rate at most 0.1 %; fewer than ``min_samples`` on a side is
inconclusive, never a rollback.

A rule is one class that carries all three of its forms: :meth:`Rule.check` (the in-process
evaluation), :meth:`Rule.alert` (the same test in PromQL, for ``aurum-migrate rules``) and its YAML
schema (its dataclass fields, under its ``name``). Defining a subclass with a ``name`` and a
``check`` registers it: policies load it from YAML and the rules generator renders it, with no
table to edit elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

from aurum_otel.errors import ConfigurationError
from aurum_otel.health import promql
from aurum_otel.health.promql import VS_LEGACY, RecordedNames, quantile_label, side
from aurum_otel.health.stats import WindowStats
from aurum_otel.health.verdict import RuleResult, Status, combine_all, combine_any
from aurum_otel.phase import Implementation

DEFAULT_MIN_SAMPLES = 20
DEFAULT_WINDOW = 300.0


_KINDS: dict[str, type[Rule]] = {}


def rule_kinds() -> Mapping[str, type[Rule]]:
    """Every leaf rule class by its YAML name, in the order they were defined."""
    return dict(_KINDS)


class Rule:
    """A health rule. Leaf rules are frozen dataclasses that define ``name`` (their YAML key),
    :meth:`check` and :meth:`alert`; ``&`` and ``|`` compose rules."""

    name = "rule"
    alert_name: ClassVar[str] = "AurumMigrationRule"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "check" in cls.__dict__ and "name" in cls.__dict__:
            _KINDS[cls.name] = cls

    def check(self, stats: WindowStats) -> list[RuleResult]:
        """This rule's findings (leaf rules override this)."""
        raise NotImplementedError

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        """``(alert name, PromQL expression, summary)``: the same test as :meth:`check`, over the
        recording rules ``names``."""
        raise TypeError(f"cannot generate PromQL for {type(self).__name__}")

    def quantiles(self) -> tuple[float, ...]:
        """The latency quantiles whose recording rules :meth:`alert` reads."""
        return ()

    @property
    def acts(self) -> bool:
        """``False`` for a dry-run rule: evaluated and shown, never deciding a verdict."""
        return True

    def labels(self) -> dict[str, str]:
        """The labels of this rule's generated alert."""
        return {"severity": "critical", "aurum_rollback": "true"}

    def recordings(self, names: RecordedNames) -> list[dict[str, str]]:
        """Recording rules :meth:`alert` reads beyond the common ones (``record``/``expr``)."""
        return []

    signed: ClassVar[frozenset[str]] = frozenset()
    """Number fields that may be negative (the others are checked to be >= 0)."""

    @classmethod
    def fields(cls) -> frozenset[str]:
        """The YAML schema: the fields a policy may set (the dataclass fields)."""
        return frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        """Raise :class:`ConfigurationError` for options out of range (numbers >= 0 are checked
        already, and each option's type is its field's: a number, an integer, text or a flag)."""

    @classmethod
    def types(cls) -> Mapping[str, str]:
        """Each YAML field's type as declared (``float``, ``int``, ``str``, ``bool``)."""
        return {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    def evaluate(self, stats: WindowStats) -> tuple[Status, list[RuleResult]]:
        """The rule's status and the findings behind it (inconclusive on unusable figures)."""
        unusable = _unusable(stats)
        if unusable is not None:
            return Status.INCONCLUSIVE, [unusable]
        results = self.check(stats)
        if not self.acts:  # a dry run is shown, never decides
            return Status.HEALTHY, results
        return combine_all(r.status for r in results), results

    def __and__(self, other: Rule) -> Rule:
        return AllOf((*_flatten(self, AllOf), *_flatten(other, AllOf)))

    def __or__(self, other: Rule) -> Rule:
        return AnyOf((*_flatten(self, AnyOf), *_flatten(other, AnyOf)))


def _unusable(stats: WindowStats) -> RuleResult | None:
    """A finding that the figures themselves cannot be judged (NaN, infinite, negative...)."""
    problem = stats.problem()
    if problem is None:
        return None
    return RuleResult("data", Status.INCONCLUSIVE,
                      f"figures from {stats.source} cannot be judged: {problem}", None, None,
                      stats.window, {}, stats.source)


def _flatten(rule: Rule, kind: type[AllOf] | type[AnyOf]) -> tuple[Rule, ...]:
    return rule.rules if isinstance(rule, kind) else (rule,)


@dataclass(frozen=True)
class AllOf(Rule):
    """Every rule must hold (dry-run rules are evaluated and left out of the status)."""

    rules: tuple[Rule, ...]
    name = "all"

    def evaluate(self, stats: WindowStats) -> tuple[Status, list[RuleResult]]:
        unusable = _unusable(stats)
        if unusable is not None:
            return Status.INCONCLUSIVE, [unusable]
        outcomes = [(rule.acts, *rule.evaluate(stats)) for rule in self.rules]
        acting = [s for acts, s, _ in outcomes if acts]
        status = combine_all(acting) if acting else Status.HEALTHY
        return status, [r for _, _, rs in outcomes for r in rs]


@dataclass(frozen=True)
class AnyOf(Rule):
    """At least one rule must hold."""

    rules: tuple[Rule, ...]
    name = "any"

    def evaluate(self, stats: WindowStats) -> tuple[Status, list[RuleResult]]:
        unusable = _unusable(stats)
        if unusable is not None:
            return Status.INCONCLUSIVE, [unusable]
        outcomes = [(rule.acts, *rule.evaluate(stats)) for rule in self.rules]
        acting = [s for acts, s, _ in outcomes if acts]
        status = combine_any(acting) if acting else Status.HEALTHY
        return status, [r for _, _, rs in outcomes for r in rs]


def leaves(rule: Rule) -> tuple[Rule, ...]:
    """The leaf rules of a composed rule, in order."""
    if isinstance(rule, AllOf | AnyOf):
        return tuple(leaf for inner in rule.rules for leaf in leaves(inner))
    return (rule,)


def _samples(stats: WindowStats) -> dict[str, float]:
    return {"legacy": stats.legacy.calls, "simplified": stats.simplified.calls}


@dataclass(frozen=True)
class ErrorRateRule(Rule):
    """Simplified's error rate at most legacy's + ``max_increase`` and at most ``max_rate``.

    A breach counts only when it is statistically significant at ``confidence`` (a one-sided
    test on the normal approximation of the two rates), so ordinary noise between two equally
    good implementations does not flap the controller; ``confidence=0`` compares the raw rates.
    Without a legacy baseline (say, in the simplified phase once legacy's calls have left the
    window) only the absolute bound applies, so a failing simplified path still rolls back.
    """

    max_increase: float = 0.01
    max_rate: float = 0.05
    min_samples: int = DEFAULT_MIN_SAMPLES
    confidence: float = 0.99
    name = "error_rate"
    alert_name = "AurumMigrationErrorRate"

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        if not 0 <= options.get("confidence", 0.99) < 1:
            raise ConfigurationError(f"{where}.confidence", options["confidence"],
                                     "a number in [0, 1)")

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        s_ratio, l_ratio = side(names.error_ratio, "simplified"), side(names.error_ratio, "legacy")
        s_calls, l_calls = side(names.calls, "simplified"), side(names.calls, "legacy")
        s_var = f"({s_ratio} * (1 - {s_ratio}) / {s_calls})"
        l_var = f"({l_ratio} * (1 - {l_ratio}) / {l_calls})"
        z, impl = f"{self.z:.6g}", promql.IMPL
        absolute = (f"(({s_ratio} - {self.max_rate:g}) > {z} * sqrt({s_var}))"
                    f" and {s_calls} >= {self.min_samples}")
        relative = (
            f"(({s_ratio} - {VS_LEGACY} ({l_ratio} + {self.max_increase:g}))"
            f" > ({z} * sqrt({s_var} + {VS_LEGACY} {l_var})))"
            f" and {s_calls} >= {self.min_samples}"
            f" and ignoring({impl}) {l_calls} >= {self.min_samples}"
            f" and ignoring({impl}) ({l_ratio} + {self.max_increase:g}) < {self.max_rate:g}"
        )
        return (self.alert_name, f"({absolute}) or ({relative})",
                f"simplified error rate above legacy + {self.max_increase:g} or "
                f"{self.max_rate:g} (significant at {self.confidence:g})")

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.confidence) if self.confidence > 0.5 else 0.0

    def check(self, stats: WindowStats) -> list[RuleResult]:
        samples = _samples(stats)
        s_calls, l_calls = stats.simplified.calls, stats.legacy.calls
        simplified = stats.simplified.error_rate
        query = stats.queries.get("error_rate", stats.source)
        if s_calls < self.min_samples or simplified is None:
            return [RuleResult(
                self.name, Status.INCONCLUSIVE,
                f"{s_calls:g} simplified calls in the window, {self.min_samples} needed",
                simplified, self.max_rate, stats.window, samples, query,
            )]
        simplified_variance = simplified * (1 - simplified) / s_calls
        z = self.z
        # Unhealthy when simplified is significantly above the cap, or significantly above
        # legacy + max_increase (the generated Prometheus alert is the same disjunction).
        absolute = simplified - self.max_rate > z * math.sqrt(simplified_variance)
        threshold, relative = self.max_rate, False
        legacy = stats.legacy.error_rate
        if l_calls >= self.min_samples and legacy is not None:
            variance = simplified_variance + legacy * (1 - legacy) / l_calls
            if legacy + self.max_increase < self.max_rate:
                threshold = legacy + self.max_increase
                relative = simplified - threshold > z * math.sqrt(variance)
            baseline = f"legacy {legacy:.2%} + {self.max_increase * 100:g} point(s), capped at " \
                       f"{self.max_rate:.0%}"
            margin = z * math.sqrt(variance)
        else:
            baseline = f"{self.max_rate:.0%}; no legacy baseline ({l_calls:g} calls)"
            margin = z * math.sqrt(simplified_variance)
        breached = absolute or relative
        status = Status.UNHEALTHY if breached else Status.HEALTHY
        if breached:
            verdict = f"above {threshold:.2%} ({baseline}), significant at {self.confidence:.0%}"
        elif simplified > threshold:
            verdict = (f"above {threshold:.2%} ({baseline}) but within noise "
                       f"(margin {margin:.2%} at {self.confidence:.0%})")
        else:
            verdict = f"within {threshold:.2%} ({baseline})"
        return [RuleResult(
            self.name, status, f"simplified error rate {simplified:.2%} is {verdict}",
            simplified, threshold, stats.window, samples, query,
        )]


@dataclass(frozen=True)
class LatencyRule(Rule):
    """Simplified's latency quantile at most ``max_ratio`` times legacy's.

    A ratio breach counts only when the quantiles also differ by more than ``min_increase``
    seconds (default 5 ms): sub-millisecond calls differ by large ratios that no caller feels,
    and the duration histogram cannot resolve them anyway.
    """

    max_ratio: float = 1.5
    quantile: float = 0.95
    min_samples: int = DEFAULT_MIN_SAMPLES
    min_increase: float = 0.005
    name = "latency"
    alert_name = "AurumMigrationLatency"

    @classmethod
    def validate(cls, options: Mapping[str, float], where: str) -> None:
        if not 0 < options.get("quantile", 0.95) < 1:
            raise ConfigurationError(f"{where}.quantile", options["quantile"], "a number in (0, 1)")

    def quantiles(self) -> tuple[float, ...]:
        return (self.quantile,)

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        recorded, impl = names.latency(self.quantile), promql.IMPL
        s_p95, l_p95 = side(recorded, "simplified"), side(recorded, "legacy")
        expr = (f"({s_p95} / {VS_LEGACY} {l_p95} > {self.max_ratio:g})"
                f" and ({s_p95} - {VS_LEGACY} {l_p95} > {self.min_increase:g})"
                f" and {side(names.calls, 'simplified')} >= {self.min_samples}"
                f" and ignoring({impl}) {side(names.calls, 'legacy')} >= {self.min_samples}")
        label = quantile_label(self.quantile).replace("_", ".")
        return (self.alert_name, expr,
                f"simplified {label} above {self.max_ratio:g}x legacy {label}")

    def check(self, stats: WindowStats) -> list[RuleResult]:
        samples = _samples(stats)
        query = stats.latency_query(self.quantile)
        label = f"p{self.quantile * 100:g}"
        if min(stats.legacy.calls, stats.simplified.calls) < self.min_samples:
            return [RuleResult(
                self.name, Status.INCONCLUSIVE,
                f"{label} needs {self.min_samples} calls per side "
                f"(legacy {stats.legacy.calls:g}, simplified {stats.simplified.calls:g})",
                None, self.max_ratio, stats.window, samples, query,
            )]
        legacy = stats.quantile(Implementation.LEGACY, self.quantile)
        simplified = stats.quantile(Implementation.SIMPLIFIED, self.quantile)
        if legacy is None or simplified is None or legacy <= 0:
            return [RuleResult(
                self.name, Status.INCONCLUSIVE, f"{label} could not be measured",
                None, self.max_ratio, stats.window, samples, query,
            )]
        ratio = simplified / legacy
        breached = ratio > self.max_ratio and simplified - legacy > self.min_increase
        status = Status.UNHEALTHY if breached else Status.HEALTHY
        return [RuleResult(
            self.name, status,
            f"simplified {label} {simplified * 1000:.1f} ms is {ratio:.2f}x legacy's "
            f"{legacy * 1000:.1f} ms (at most {self.max_ratio:g}x, or within "
            f"{self.min_increase * 1000:g} ms)",
            ratio, self.max_ratio, stats.window, samples, query,
        )]


@dataclass(frozen=True)
class MismatchRule(Rule):
    """Mismatches at most ``max_rate`` of completed shadow comparisons."""

    max_rate: float = 0.001
    min_samples: int = DEFAULT_MIN_SAMPLES
    name = "mismatch_rate"
    alert_name = "AurumMigrationMismatch"

    def alert(self, names: RecordedNames) -> tuple[str, str, str]:
        expr = (f"({names.mismatch_ratio} > {self.max_rate:g})"
                f" and {names.compared} >= {self.min_samples}")
        return self.alert_name, expr, f"shadow mismatch rate above {self.max_rate:g}"

    def check(self, stats: WindowStats) -> list[RuleResult]:
        compared = stats.matches + stats.mismatches
        samples = {"comparisons": compared, **_samples(stats)}
        query = stats.queries.get("mismatch_rate", stats.source)
        if compared == 0:
            # No shadow traffic (compare 0 or no hybrid): nothing to judge, nothing to block.
            return [RuleResult(self.name, Status.HEALTHY, "no shadow comparisons in the window",
                               None, self.max_rate, stats.window, samples, query)]
        rate = stats.mismatches / compared
        if compared < self.min_samples:
            return [RuleResult(
                self.name, Status.INCONCLUSIVE,
                f"{compared:g} comparisons in the window, {self.min_samples} needed",
                rate, self.max_rate, stats.window, samples, query,
            )]
        status = Status.HEALTHY if rate <= self.max_rate else Status.UNHEALTHY
        return [RuleResult(
            self.name, status,
            f"{stats.mismatches:g} of {compared:g} comparisons mismatched ({rate:.3%}, at most "
            f"{self.max_rate:.3%})",
            rate, self.max_rate, stats.window, samples, query,
        )]


def default_rules(min_samples: int = DEFAULT_MIN_SAMPLES) -> Rule:
    """The DESIGN defaults, all of which must hold, and the split as configured (issue 16)."""
    # The split rule lives in health/split.py, which builds on this module; the package's
    # __init__ imports it, so it is registered before anyone can call this.
    split = _KINDS["split"](min_samples=min_samples)  # type: ignore[call-arg]
    return (
        ErrorRateRule(min_samples=min_samples)
        & LatencyRule(min_samples=min_samples)
        & MismatchRule(min_samples=min_samples)
        & split
    )

"""Every PromQL expression aurum-otel reads, built once for the Prometheus source and the rules.

The Prometheus health source (one migration, ``by implementation``) and the generated recording
rules (every migration, ``by name, implementation``) use the same builders, so they cannot drift.

A series' first sample: ``increase()`` takes a series' first sample in the range as its baseline,
so the calls a process counted before its first export of a new series (the calls right after an
advance, a short-lived process's calls) would never be counted. :func:`counted_increase` adds,
for a series born inside the window, its last value (counters start at zero), and uses
``increase()`` for the series that already existed when the window began.
"""

from __future__ import annotations

import math

from aurum_otel import semconv
from aurum_otel.errors import ConfigurationError

NAME = semconv.PROM_LABEL_NAME
IMPL = semconv.PROM_LABEL_IMPLEMENTATION
OUTCOME = semconv.PROM_LABEL_OUTCOME
COMPARISON = semconv.PROM_LABEL_COMPARISON
ROLE = semconv.PROM_LABEL_ROLE
# The configured share of simplified (0-100) per migration, the gauge the library exports.
ROLLOUT_PERCENT = semconv.PROM_ROLLOUT_PERCENT
FAILED = semconv.PROM_LABEL_FAILED
SLOWER = semconv.PROM_LABEL_SLOWER
COMPLETED = "match|mismatch"

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a",
            "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def escape(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL string (Go escapes, in full).

    Raises:
        ConfigurationError: ``value`` holds a lone surrogate (not encodable as UTF-8).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("migration name", value.encode("utf-8", "backslashreplace")
                                 .decode("ascii"), "valid UTF-8 text") from None
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif not char.isprintable():
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out)


def duration(seconds: float) -> str:
    """A PromQL range: whole seconds, at least 1 s.

    Raises:
        ConfigurationError: ``seconds`` is not a finite positive number.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(
            seconds) or seconds <= 0:
        raise ConfigurationError("window", seconds, "a finite number of seconds > 0")
    return f"{max(int(seconds), 1)}s"


def window_label(seconds: float) -> str:
    """The window as recording-rule names spell it: ``5m``, ``1h``, ``90s``."""
    whole = int(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def quantile_label(q: float) -> str:
    """``p95``, ``p99``, ``p99_9``: the quantile as a recording-rule name spells it."""
    return "p" + f"{q * 100:g}".replace(".", "_")


def check_quantile(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise ConfigurationError("latency quantile", q, "a number between 0 and 1, e.g. 0.95")
    return float(q)


def selector(metric: str, migration: str | None = None, *matchers: str) -> str:
    """``metric{name="...", matchers...}``; ``migration=None`` selects every migration."""
    parts = ([f'{NAME}="{escape(migration)}"'] if migration is not None else []) + list(matchers)
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def counted_increase(series: str, window: str) -> str:
    """``increase()`` that also counts the first sample of a series born within the window."""
    return (f"(increase({series}[{window}]) and {series} offset {window})"
            f" or (last_over_time({series}[{window}]) unless {series} offset {window})")


def summed(series: str, window: str, by: str) -> str:
    return f"sum by ({by}) ({counted_increase(series, window)})"


def calls(window: str, by: str, migration: str | None = None) -> str:
    """Runs per ``by`` over the window (all roles and outcomes)."""
    return summed(selector(semconv.PROM_CALLS, migration), window, by)


def errors(window: str, by: str, migration: str | None = None) -> str:
    """Runs that raised, per ``by``, over the window."""
    return summed(selector(semconv.PROM_CALLS, migration, f'{OUTCOME}="error"'), window, by)


def latency(q: float, window: str, by: str, migration: str | None = None) -> str:
    """The ``q`` latency quantile per ``by`` (span-derived histogram) over the window."""
    series = selector(semconv.PROM_DURATION_BUCKET, migration, f'{IMPL}!=""')
    return f"histogram_quantile({check_quantile(q):g}, {summed(series, window, f'le, {by}')})"


def routed(window: str, by: str, migration: str | None = None) -> str:
    """Authoritative calls per ``by``, as routed: a fallback (simplified raised, legacy served)
    was routed to simplified and is counted there, as its ``error`` series, not twice."""
    series = selector(semconv.PROM_CALLS, migration, f'{ROLE}="authoritative"',
                      f'{OUTCOME}!="fallback"')
    return summed(series, window, by)


def configured_share(window: str, migration: str | None = None) -> str:
    """The configured share of simplified (0-1) per migration, only where it held one value for
    the whole window (a window that straddles a step change is not judged on either step)."""
    series = selector(ROLLOUT_PERCENT, migration)
    return (f"(max by ({NAME}) (max_over_time({series}[{window}]))"
            f" == min by ({NAME}) (min_over_time({series}[{window}]))) / 100")


def comparisons(window: str, by: str, migration: str | None = None,
                results: str = COMPLETED) -> str:
    """Completed shadow comparisons (``match|mismatch`` by default) per ``by``."""
    series = selector(semconv.PROM_COMPARISONS, migration, f'{COMPARISON}=~"{results}"')
    return summed(series, window, by)


def pairs(window: str, by: str, migration: str | None = None, *matchers: str) -> str:
    """Shadow pairs per ``by`` over the window; ``by`` may hold ``aurum_migration_failed``
    (``none|legacy|simplified|both``) and ``aurum_migration_slower``
    (``simplified|legacy|tie``), and ``matchers`` select among them."""
    return summed(selector(semconv.PROM_PAIRS, migration, *matchers), window, by)


def discordant(window: str, by: str, failed: str, migration: str | None = None) -> str:
    """Pairs where only ``failed`` (``legacy`` or ``simplified``) raised, per ``by``."""
    return pairs(window, by, migration, f'{FAILED}="{failed}"')


def slower(window: str, by: str, side: str, migration: str | None = None) -> str:
    """Pairs where ``side`` took longer (``simplified``: simplified slower, ``legacy``: faster)."""
    return pairs(window, by, migration, f'{SLOWER}="{side}"')


def pair_ratios(window: str, by: str, migration: str | None = None) -> str:
    """The cumulative pair-ratio buckets (``le``) per ``by`` over the window."""
    return summed(selector(semconv.PROM_PAIR_RATIOS, migration), window, f"le, {by}")


def median_ratio(window: str, by: str, migration: str | None = None) -> str:
    """The median simplified/legacy duration ratio of the window's pairs, per ``by``."""
    return f"histogram_quantile(0.5, {pair_ratios(window, by, migration)})"


def routing_keys(migration: str | None = None) -> str:
    """Distinct routing keys per migration and implementation in the current step, at the
    evaluation instant, as counted by the one process that saw the most of them.

    Not a sum over processes: a key seen by ten processes would count ten times, inflating the
    chi-squared statistic tenfold and condemning a correct split. One process's keys are an
    unbiased sample of the step's (processes are not chosen by bucket); ``topk`` keeps the
    series of the process with the most keys, whatever labels tell processes apart.
    """
    gauge = selector(semconv.PROM_ROUTING_KEYS, migration)
    return (f"sum by ({NAME}, {IMPL}) ({gauge} and ignoring({IMPL})"
            f" topk by ({NAME}) (1, sum without ({IMPL}) ({gauge})))")


def source_queries(migration: str, window: float, quantiles: tuple[float, ...] = (0.95,)
                   ) -> dict[str, str]:
    """What the Prometheus health source asks for one migration (one key per quantile)."""
    w = duration(window)
    out = {
        "calls": calls(w, IMPL, migration),
        "errors": errors(w, IMPL, migration),
        "comparisons": comparisons(w, COMPARISON, migration),
    }
    out["error_rate"] = f"{out['errors']} / {out['calls']}"
    for q in quantiles:
        out[f"latency:{check_quantile(q):g}"] = latency(q, w, IMPL, migration)
    out["pairs"] = pairs(w, f"{FAILED}, {SLOWER}", migration)
    out["pair_ratios"] = pair_ratios(w, NAME, migration)
    out["paired:latency"] = median_ratio(w, NAME, migration)
    out["routing_keys"] = routing_keys(migration)
    return out


class RecordedNames:
    """The recording rules' series names over one window (what the generated alerts read)."""

    def __init__(self, window: float, quantiles: tuple[float, ...] = (0.95,)) -> None:
        duration(window)  # a finite positive number of seconds, or a clear error
        w = window_label(window)
        self.range = w
        self.seconds = float(window)
        self.calls = f"aurum:migration_calls:increase{w}"
        self.errors = f"aurum:migration_errors:increase{w}"
        self.error_ratio = f"aurum:migration_error_ratio:ratio{w}"
        self.quantiles = tuple(dict.fromkeys(check_quantile(q) for q in quantiles))
        self.compared = f"aurum:migration_comparisons:increase{w}"
        self.mismatch_ratio = f"aurum:migration_mismatch_ratio:ratio{w}"
        self.routed = f"aurum:migration_routed_calls:increase{w}"
        self.split_calls = f"aurum:migration_split_calls:increase{w}"
        self.split_simplified = f"aurum:migration_split_simplified:increase{w}"
        self.split_configured = f"aurum:migration_split_configured:ratio{w}"
        # the step's distinct routing keys (of the process that saw the most: not windowed)
        self.routing_keys = "aurum:migration_routing_keys:best"
        self.split_keys = "aurum:migration_split_keys:sum"
        self.split_keys_simplified = "aurum:migration_split_keys_simplified:sum"
        self.pairs_by_side = f"aurum:migration_pairs_by_side:increase{w}"
        self.pairs = f"aurum:migration_pairs:increase{w}"
        self.legacy_only_failed = f"aurum:migration_pairs_legacy_only_failed:increase{w}"
        self.simplified_only_failed = f"aurum:migration_pairs_simplified_only_failed:increase{w}"
        self.simplified_slower = f"aurum:migration_pairs_simplified_slower:increase{w}"
        self.simplified_faster = f"aurum:migration_pairs_simplified_faster:increase{w}"
        self.pair_ratio_median = f"aurum:migration_pair_ratio:p50_{w}"
        self._window = w

    def latency(self, q: float) -> str:
        return f"aurum:migration_duration_seconds:{quantile_label(q)}_{self._window}"


# Arithmetic between a simplified and a legacy series. One-to-one matching with ignoring() drops
# the ignored label from the result, after which `and <simplified series>` (which has it) matches
# nothing and the alert can never fire; group_left keeps the left (simplified) side's labels.
# Set operators (`and ignoring(...)`) keep the left side's labels and take no group modifier.
VS_LEGACY = f"ignoring({IMPL}) group_left()"


def side(metric: str, impl: str) -> str:
    """``metric`` of one implementation (``legacy`` or ``simplified``)."""
    return f'{metric}{{{IMPL}="{impl}"}}'

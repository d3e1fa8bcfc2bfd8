"""A health policy: the rules, the window, and how to load them from YAML."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aurum_otel.errors import ConfigurationError
from aurum_otel.health.rules import (
    DEFAULT_MIN_SAMPLES,
    DEFAULT_WINDOW,
    AllOf,
    AnyOf,
    Rule,
    default_rules,
    rule_kinds,
)
from aurum_otel.health.stats import HealthSource
from aurum_otel.health.verdict import Verdict


@dataclass(frozen=True)
class HealthPolicy:
    """The rules a migration is held to and the window they look at."""

    rules: Rule = field(default_factory=default_rules)
    window: float = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int | float) or not (
            0 < self.window < math.inf
        ):
            raise ConfigurationError("window", self.window, "a finite number of seconds > 0")

    def evaluate(self, migration: str, source: HealthSource) -> Verdict:
        """Judge ``migration`` on ``source``'s figures over this policy's window."""
        stats = source.stats(migration, self.window)
        status, results = self.rules.evaluate(stats)
        return Verdict(migration, status, tuple(results), source.name)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> HealthPolicy:
        """Load a policy from YAML text or a file::

            window: 300            # seconds
            min_samples: 20        # default for every rule
            rules:                 # all must hold; {any: [...]} nests an alternative
              - error_rate: {max_increase: 0.01, max_rate: 0.05}
              - latency: {max_ratio: 1.5, quantile: 0.95}
              - mismatch_rate: {max_rate: 0.001}
              - split: {confidence: 0.999}   # the authoritative split is as configured
              - metric:                # any PromQL, only with the Prometheus source
                  metric: checkout_p99
                  query: 'histogram_quantile(0.99, sum by (le, aurum_migration_name) (...))'
                  threshold: 0.5
                  direction: max       # max: at most threshold; min: at least
                  interval: 60         # one measurement per minute of the window
                  failure_limit: 1     # more breaches than this: unhealthy
                  inconclusive_limit: 2  # more missing measurements than this: inconclusive
                  dry_run: false       # true: evaluated and shown, never acts

        Raises:
            ConfigurationError: the YAML or a field is invalid; the message names it.
        """
        source = "rules"
        if isinstance(text_or_path, Path) or (
            "\n" not in str(text_or_path) and str(text_or_path).endswith((".yml", ".yaml"))
        ):
            path = Path(text_or_path)
            source = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    source, str(path), f"a readable YAML file ({exc.strerror})"
                ) from None
            except UnicodeDecodeError:
                raise ConfigurationError(
                    source, str(path), "a UTF-8 text YAML file (this one is binary)"
                ) from None
        else:
            text = str(text_or_path)
        if "\x00" in text:
            raise ConfigurationError(source, "<binary>", "a text YAML file")
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(source, "<yaml>", f"valid YAML ({exc})".replace("\n", " ")) from None
        except RecursionError:
            raise ConfigurationError(source, "<yaml>", f"YAML nested at most {MAX_DEPTH} levels") from None
        if document is None:
            return cls()
        if not isinstance(document, Mapping):
            raise ConfigurationError(source, type(document).__name__,
                                     "a mapping with window, min_samples and rules")
        min_samples = _number(document, "min_samples", DEFAULT_MIN_SAMPLES, source, integer=True)
        window = _number(document, "window", DEFAULT_WINDOW, source)
        if window <= 0:
            raise ConfigurationError(f"{source}: window", window, "a positive number of seconds")
        raw_rules = document.get("rules")
        if raw_rules is None:
            return cls(default_rules(int(min_samples)), window)
        return cls(_parse(raw_rules, int(min_samples), f"{source}: rules"), window)


MAX_DEPTH = 32


def _parse(node: Any, min_samples: int, where: str, depth: int = 0) -> Rule:
    if depth > MAX_DEPTH:
        raise ConfigurationError(where, "...", f"rules nested at most {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        if not node:
            raise ConfigurationError(where, "[]", "at least one rule")
        return AllOf(tuple(_parse(item, min_samples, f"{where}[{i}]", depth + 1)
                            for i, item in enumerate(node)))
    if not isinstance(node, Mapping) or len(node) != 1:
        raise ConfigurationError(where, node, "one of error_rate, latency, mismatch_rate, all, any")
    (kind, body), = node.items()
    if kind in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise ConfigurationError(f"{where}.{kind}", body, "a non-empty list of rules")
        rules = tuple(_parse(item, min_samples, f"{where}.{kind}[{i}]", depth + 1)
                      for i, item in enumerate(body))
        return AllOf(rules) if kind == "all" else AnyOf(rules)
    kinds = rule_kinds()
    if kind not in kinds:
        raise ConfigurationError(where, kind, f"one of {', '.join([*kinds, 'all', 'any'])}")
    leaf = kinds[kind]
    fields = leaf.fields()
    body = {} if body is None else body
    if not isinstance(body, Mapping):
        raise ConfigurationError(f"{where}.{kind}", body, f"a mapping of {sorted(fields)}")
    unknown = set(body) - fields
    if unknown:
        raise ConfigurationError(f"{where}.{kind}", sorted(unknown), f"fields {sorted(fields)}")
    options: dict[str, Any] = {"min_samples": min_samples} if "min_samples" in fields else {}
    types = leaf.types()
    for key in body:
        options[key] = _option(body, key, types.get(key, "float"), f"{where}.{kind}")
        if isinstance(options[key], float | int) and not isinstance(options[key], bool) and (
                options[key] < 0 and key not in leaf.signed):
            raise ConfigurationError(f"{where}.{kind}.{key}", options[key], "a number >= 0")
    leaf.validate(options, f"{where}.{kind}")
    return leaf(**options)


def _option(body: Mapping[str, Any], key: str, kind: str, where: str) -> Any:
    """One rule option, of its field's type: text, a flag, an integer or a number."""
    value = body[key]
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}.{key}", value, "text (quote it in YAML)")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}.{key}", value, "true or false")
        return value
    return _number(body, key, 0, where, integer=kind == "int")


def _number(mapping: Mapping[str, Any], key: str, default: float, where: str,
            *, integer: bool = False) -> float:
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{where}: {key}", value, "an integer" if integer else "a number")
    if not math.isfinite(value):
        raise ConfigurationError(f"{where}: {key}", value, "a finite number (not .nan or .inf)")
    if integer and int(value) != value:
        raise ConfigurationError(f"{where}: {key}", value, "an integer")
    return int(value) if integer else float(value)

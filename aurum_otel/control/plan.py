"""Rollout plans: the steps a controller walks, their gates, and how to load them from YAML.

A plan file::

    bake: 300                    # default seconds a step must stay healthy (optional)
    steps:
      - {percent: 0, compare: 100}            # hybrid shadow
      - {percent: 10, compare: 25, bake: 600, rules: [error_rate, mismatch_rate]}
      - {percent: 50, compare: 25, approve: true}   # waits for `aurum-migrate approve`
      - {percent: 100, fallback: true, pause: true} # waits for `aurum-migrate resume`
      - {phase: simplified, approve: true}
    webhooks:
      confirm: {url: "http://127.0.0.1:8080/confirm", timeout: 5}
      notify:
        - {url: "http://127.0.0.1:8080/events", events: [transition, rollback]}

``pause`` and ``approve`` are gates on *entering* their step: the controller stops before it,
once the step before has baked healthy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aurum_otel.errors import ConfigurationError
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.rules import AllOf, Rule, leaves, rule_kinds
from aurum_otel.phase import Phase, Rollout

EVENTS = ("transition", "rollback", "unhealthy", "paused", "resumed", "waiting_for_approval",
          "approved")
"""The events a notification webhook can receive (``events:`` in a plan's ``notify``)."""

_STEP_KEYS = ("phase", "percent", "compare", "fallback", "bake", "rules", "pause", "approve")
_HOOK_KEYS = ("url", "timeout", "retries", "events")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a rollout plan: a phase and, in hybrid, its rollout.

    Attributes:
        bake: seconds this step must stay healthy before the next (``None``: the controller's).
        rules: the rules that judge this step (``None``: the policy's).
        pause: the controller holds before entering this step until ``aurum-migrate resume``.
        approve: the controller waits before entering this step for ``aurum-migrate approve``.
    """

    phase: Phase
    rollout: Rollout = Rollout(percent=0.0, compare=0.0)
    bake: float | None = None
    rules: Rule | None = field(default=None, compare=False)
    pause: bool = False
    approve: bool = False

    @property
    def label(self) -> str:
        if self.phase is not Phase.HYBRID:
            return self.phase.value
        if self.rollout.percent == 0:
            return f"hybrid shadow (compare {self.rollout.compare:g}%)"
        return f"hybrid {self.rollout.percent:g}% (compare {self.rollout.compare:g}%)"

    @property
    def gates(self) -> tuple[str, ...]:
        """``pause`` and/or ``approve``: what must be released before the step is entered."""
        return tuple(g for g, on in (("pause", self.pause), ("approve", self.approve)) if on)


DEFAULT_PLAN: tuple[Step, ...] = (
    Step(Phase.HYBRID, Rollout(percent=0, compare=100)),
    Step(Phase.HYBRID, Rollout(percent=10, compare=25)),
    Step(Phase.HYBRID, Rollout(percent=50, compare=25)),
    Step(Phase.HYBRID, Rollout(percent=100, compare=25)),
    Step(Phase.SIMPLIFIED),
)


def default_document(bake: float) -> dict[str, Any]:
    """The built-in plan as a plan document (what ``watch`` keeps for ``plan show``)."""
    steps: list[dict[str, Any]] = [
        {"percent": s.rollout.percent, "compare": s.rollout.compare} if s.phase is Phase.HYBRID
        else {"phase": s.phase.value} for s in DEFAULT_PLAN]
    return {"bake": bake, "steps": steps}


def plan_position(plan: Sequence[Step], phase: Phase, rollout: Rollout) -> int:
    """The index of the plan step a (phase, rollout) stands at; -1 for legacy.

    A state between steps counts as the last step it has reached.
    """
    if phase is Phase.LEGACY:
        return -1
    for index, step in enumerate(plan):
        if step.phase is phase and (phase is not Phase.HYBRID or step.rollout.percent == rollout.percent):
            return index
    position = -1
    for index, step in enumerate(plan):
        if (step.phase.rank, step.rollout.percent) <= (phase.rank, rollout.percent):
            position = index
    return position


@dataclass(frozen=True, slots=True)
class Webhook:
    """An HTTP endpoint: the pre-advance confirmation or an event notification target."""

    url: str
    timeout: float = 5.0
    retries: int = 3
    events: frozenset[str] = frozenset(EVENTS)


@dataclass(frozen=True)
class Plan:
    """Steps plus the webhooks that confirm and hear of them.

    Attributes:
        document: the YAML mapping the plan was read from (kept so ``plan show`` can show it).
        source: where it came from (a path, or ``built-in``).
    """

    steps: tuple[Step, ...] = DEFAULT_PLAN
    confirm: Webhook | None = None
    notify: tuple[Webhook, ...] = ()
    document: Mapping[str, Any] | None = field(default=None, compare=False)
    source: str = "built-in"

    @classmethod
    def from_yaml(cls, text_or_path: str | Path, policy: HealthPolicy | None = None) -> Plan:
        """Read and validate a plan (a path, or YAML text containing a newline).

        ``rules:`` names are looked up in ``policy`` first, then among the rule kinds with their
        defaults; a mapping there uses the policy file's rule syntax.

        Raises:
            ConfigurationError: the file or a field is invalid; the message names it.
        """
        source = "plan"
        if isinstance(text_or_path, Path) or "\n" not in str(text_or_path):
            source = str(text_or_path)
            try:
                text = Path(text_or_path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(source, str(text_or_path),
                                         f"a readable YAML plan file ({exc.strerror})") from None
            except UnicodeDecodeError:
                raise ConfigurationError(source, "<binary>", "a UTF-8 YAML plan file") from None
        else:
            text = str(text_or_path)
        try:
            document = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise ConfigurationError(source, "<yaml>",
                                     f"valid YAML ({exc})".replace("\n", " ")) from None
        if not isinstance(document, Mapping):
            raise ConfigurationError(source, type(document).__name__,
                                     "a mapping with steps (and optionally bake, webhooks)")
        return cls.from_document(document, policy, source=source)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], policy: HealthPolicy | None = None, *,
                      source: str = "plan") -> Plan:
        unknown = set(document) - {"steps", "bake", "webhooks", "name"}
        if unknown:
            raise ConfigurationError(f"{source}: {sorted(map(str, unknown))[0]}", "...",
                                     "top-level keys steps, bake, webhooks, name")
        default_bake = _seconds(document, "bake", None, source)
        raw_steps = document.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ConfigurationError(f"{source}: steps", raw_steps,
                                     "a non-empty list of steps ({percent: 10, compare: 25}, ...)")
        steps = tuple(_step(raw, f"{source}: steps[{i}]", default_bake, policy)
                      for i, raw in enumerate(raw_steps))
        for i, (before, after) in enumerate(itertools.pairwise(steps), start=1):
            if (after.phase.rank, after.rollout.percent) <= (before.phase.rank,
                                                              before.rollout.percent):
                raise ConfigurationError(
                    f"{source}: steps[{i}]", after.label,
                    f"a step after {before.label}: each step must serve more of simplified "
                    "(a higher percent, or phase simplified) than the one before")
        hooks = document.get("webhooks") or {}
        if not isinstance(hooks, Mapping) or set(hooks) - {"confirm", "notify"}:
            raise ConfigurationError(f"{source}: webhooks", hooks,
                                     "a mapping with confirm and/or notify")
        confirm = (_webhook(hooks["confirm"], f"{source}: webhooks.confirm")
                   if hooks.get("confirm") is not None else None)
        notify_raw = hooks.get("notify") or []
        if isinstance(notify_raw, Mapping | str):
            notify_raw = [notify_raw]
        if not isinstance(notify_raw, list):
            raise ConfigurationError(f"{source}: webhooks.notify", notify_raw,
                                     "a list of {url: ..., events: [...]}")
        notify = tuple(_webhook(raw, f"{source}: webhooks.notify[{i}]")
                       for i, raw in enumerate(notify_raw))
        return cls(steps, confirm, notify, dict(document), source)


def _step(raw: Any, where: str, default_bake: float | None,
          policy: HealthPolicy | None) -> Step:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(where, raw, "a mapping such as {percent: 10, compare: 25}")
    unknown = sorted(str(k) for k in set(raw) - set(_STEP_KEYS))
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]}", raw[unknown[0]],
                                 f"one of the step keys {', '.join(_STEP_KEYS)}")
    phase_text = raw.get("phase", "hybrid")
    try:
        phase = Phase(phase_text)
    except ValueError:
        raise ConfigurationError(f"{where}.phase", phase_text, "hybrid or simplified") from None
    if phase is Phase.LEGACY:
        raise ConfigurationError(f"{where}.phase", phase_text,
                                 "hybrid or simplified (legacy is where every plan starts)")
    rollout = Rollout(percent=0.0, compare=0.0)
    if phase is Phase.HYBRID:
        if "percent" not in raw:
            raise ConfigurationError(f"{where}.percent", None,
                                     "a number from 0 to 100 (every hybrid step names its percent)")
        rollout = Rollout(percent=_number(raw, "percent", 0.0, where, 100.0),
                          compare=_number(raw, "compare", 0.0, where, 100.0),
                          fallback=_flag(raw, "fallback", where))
    else:
        extra = sorted({"percent", "compare", "fallback"} & set(raw))
        if extra:
            raise ConfigurationError(f"{where}.{extra[0]}", raw[extra[0]],
                                     "nothing: only hybrid steps have a rollout")
    bake = _seconds(raw, "bake", default_bake, where)
    return Step(phase, rollout, bake, _rules(raw.get("rules"), f"{where}.rules", policy),
                _flag(raw, "pause", where), _flag(raw, "approve", where))


def _rules(raw: Any, where: str, policy: HealthPolicy | None) -> Rule | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise ConfigurationError(where, raw, "a non-empty list of rule names or rules")
    kinds = rule_kinds()
    known = {leaf.name: leaf for leaf in leaves(policy.rules)} if policy is not None else {}
    chosen: list[Rule] = []
    for i, item in enumerate(raw):
        if isinstance(item, str) and item in known:
            chosen.append(known[item])
        elif isinstance(item, str) and item not in kinds:
            raise ConfigurationError(f"{where}[{i}]", item,
                                     f"a rule name: one of {', '.join(kinds)}")
        else:
            body = {item: None} if isinstance(item, str) else item
            try:
                chosen.append(HealthPolicy.from_yaml(yaml.safe_dump({"rules": [body]})).rules)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}[{i}]", item, exc.allowed) from None
    return chosen[0] if len(chosen) == 1 else AllOf(tuple(chosen))


def _number(raw: Mapping[str, Any], key: str, default: float, where: str,
            maximum: float = math.inf) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 <= value <= maximum) or not math.isfinite(value):
        bound = f"a number from 0 to {maximum:g}" if math.isfinite(maximum) else \
            "a finite number >= 0"
        raise ConfigurationError(f"{where}.{key}", value, bound)
    return float(value)


def _seconds(raw: Mapping[str, Any], key: str, default: float | None, where: str) -> float | None:
    if raw.get(key) is None:
        return default
    return _number(raw, key, 0.0, where, 30 * 86400.0)


def _flag(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}.{key}", value, "true or false")
    return value


def _webhook(raw: Any, where: str) -> Webhook:
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(where, raw, "{url: http://..., timeout: 5}")
    unknown = sorted(str(k) for k in set(raw) - set(_HOOK_KEYS))
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]}", raw[unknown[0]],
                                 f"one of {', '.join(_HOOK_KEYS)}")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}.url", url, "an http:// or https:// URL")
    timeout = _number(raw, "timeout", 5.0, where, 300.0)
    if timeout <= 0:
        raise ConfigurationError(f"{where}.timeout", timeout, "seconds > 0")
    retries = raw.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        raise ConfigurationError(f"{where}.retries", retries, "an integer from 0 to 20")
    events = raw.get("events", list(EVENTS))
    if not isinstance(events, list) or not all(e in EVENTS for e in events):
        raise ConfigurationError(f"{where}.events", events,
                                 f"a list of events among {', '.join(EVENTS)}")
    return Webhook(url, timeout, retries, frozenset(events))

"""How the OpenFeature source reads a migration's flags: the phase flag and the optional rollout
flags, with every provider error logged once and answered by the last known value or a default."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails

from aurum_otel.errors import ConfigurationError
from aurum_otel.phase import Phase, Rollout

logger = logging.getLogger("aurum_otel.store")

FlagValue = tuple[Phase, Rollout]
"""What a migration's flags say: its phase and rollout."""


class FlagEvaluator:
    """Evaluates one migration's flags through an OpenFeature client.

    Args:
        client: the OpenFeature client.
        templates: keys of the phase, percent, compare and fallback flags (``{name}`` is the
            migration; an empty rollout key is not evaluated).
        context: the evaluation context; the attribute ``migration`` (the name) is added.
        last_known: what to answer for a migration when the provider cannot.
    """

    def __init__(self, client: OpenFeatureClient, templates: tuple[str, str, str, str],
                 context: EvaluationContext,
                 last_known: Callable[[str], FlagValue | None]) -> None:
        self._client = client
        self.phase_key, self.percent_key, self.compare_key, self.fallback_key = templates
        self._context = context
        self._last_known = last_known
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()
        self.answered = False
        """Whether the provider has answered at least once (a phase, or "no such flag")."""
        self.key_patterns = key_patterns([t for t in templates if t])

    def evaluate(self, name: str) -> FlagValue | None:
        """What the provider says for ``name`` now (None: no phase flag); last value on errors."""
        context = self._context.merge(EvaluationContext(attributes={"migration": name}))
        key = self.phase_key.format(name=name)
        details = self._client.get_string_details(key, "", context)
        if details.error_code is ErrorCode.FLAG_NOT_FOUND or (
            details.error_code is None and details.value == ""
        ):
            # No phase flag (or a provider that knows no flags and returned our empty default).
            self.answered = True
            return None
        if details.error_code is not None:
            self._log_once(name, "provider", "OpenFeature could not evaluate %r (%s: %s); %r keeps "
                           "its last known phase", key, details.error_code,
                           details.error_message, name)
            return self._last_known(name)
        self.answered = True
        try:
            phase = Phase.parse(details.value, variable=key)
        except ConfigurationError as exc:
            self._log_once(name, "phase", "%s; migration %r runs on legacy until the flag is fixed",
                           exc, name)
            return Phase.LEGACY, Rollout()
        defaults = Rollout()
        rollout = Rollout(
            percent=self._number(name, self.percent_key, defaults.percent, context),
            compare=self._number(name, self.compare_key, defaults.compare, context),
            fallback=self._boolean(name, self.fallback_key, defaults.fallback, context),
        )
        return phase, rollout

    def _number(self, name: str, template: str, default: float, context: EvaluationContext) -> float:
        if not template:
            return default
        key = template.format(name=name)
        details = self._client.get_float_details(key, default, context)
        if not self._usable(name, key, details):
            return default
        value = details.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            self._log_once(name, key, "OpenFeature flag %r=%r is not a number from 0 to 100; "
                           "using %s", key, value, default)
            return default
        return float(value)

    def _boolean(self, name: str, template: str, default: bool, context: EvaluationContext) -> bool:
        if not template:
            return default
        key = template.format(name=name)
        details = self._client.get_boolean_details(key, default, context)
        return bool(details.value) if self._usable(name, key, details) else default

    def _usable(self, name: str, key: str, details: FlagEvaluationDetails[Any]) -> bool:
        if details.error_code is None:
            return True
        if details.error_code is not ErrorCode.FLAG_NOT_FOUND:
            self._log_once(name, key, "OpenFeature could not evaluate %r (%s: %s); using the "
                           "default", key, details.error_code, details.error_message)
        return False

    def _log_once(self, name: str, what: str, message: str, *args: Any) -> None:
        with self._lock:
            if (name, what) in self._logged:
                return
            self._logged.add((name, what))
        logger.error(message, *args)


def derive(phase_template: str, given: str | None, what: str) -> str:
    """The key of a rollout flag: ``given``, else the phase key with ``.phase`` -> ``.<what>``."""
    if given is not None:
        return given
    if phase_template.endswith(".phase"):
        return phase_template[: -len("phase")] + what
    return f"{phase_template}.{what}"


def key_patterns(templates: list[str]) -> list[re.Pattern[str]]:
    """Patterns that find the migration's name in a flag key of each template."""
    patterns = []
    for template in templates:
        head, _, tail = template.partition("{name}")
        patterns.append(re.compile(f"{re.escape(head)}(?P<name>.+?){re.escape(tail)}"))
    return patterns

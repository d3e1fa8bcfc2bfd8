"""An OpenFeature provider that serves each migration's phase flags from aurum-otel's phase store.

Applications that evaluate flags through the OpenFeature API read what ``advance``, ``rollback``
and ``watch`` wrote::

    from openfeature import api
    from aurum_otel.openfeature_provider import AurumStoreProvider

    api.set_provider(AurumStoreProvider())          # the store AURUM_STATE_URL names
    api.get_client().get_string_value("aurum.migration.settings.phase", "legacy")

==================================  ========  ==============================================
flag                                type      value
==================================  ========  ==============================================
``aurum.migration.<name>.phase``     string    ``legacy`` | ``hybrid`` | ``simplified``
``aurum.migration.<name>.percent``   number    hybrid share served by simplified (0-100)
``aurum.migration.<name>.compare``   number    hybrid share shadow-compared (0-100)
``aurum.migration.<name>.fallback``  boolean   serve legacy when simplified raises
==================================  ========  ==============================================

These are the flags :class:`~aurum_otel.stores.openfeature.OpenFeaturePhaseSource` reads, so a
process configured with ``AURUM_STATE_URL=openfeature:`` follows the store through this
provider. A migration the store does not know gets the caller's default (reason ``DEFAULT``);
an unreadable store gets the default with reason ``ERROR``. The values are the store's, not a
process's: environment pins and kill switches apply in the processes that set them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from aurum_otel import semconv
from aurum_otel.registry import get_registry
from aurum_otel.stores.base import PhaseSource
from aurum_otel.stores.model import MigrationRecord
from aurum_otel.stores.openfeature import OpenFeaturePhaseSource

T = TypeVar("T")
_HEAD, _, _TAIL = semconv.FF_KEY.partition("{name}")
_BASE = _TAIL.removesuffix("phase")  # "." : the other flags replace the phase suffix
_FIELDS: Mapping[str, Callable[[MigrationRecord], Any]] = {
    "phase": lambda record: record.phase.value,
    "percent": lambda record: float(record.rollout.percent),
    "compare": lambda record: float(record.rollout.compare),
    "fallback": lambda record: bool(record.rollout.fallback),
}
_TYPES: Mapping[str, type | tuple[type, ...]] = {"phase": str, "percent": (float, int),
                                                 "compare": (float, int), "fallback": bool}


def parse_key(flag_key: str) -> tuple[str, str] | None:
    """``(migration, field)`` of one of the flags this provider serves, ``None`` otherwise."""
    if not flag_key.startswith(_HEAD):
        return None
    rest = flag_key[len(_HEAD):]
    for field in _FIELDS:
        suffix = _BASE + field
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)], field
    return None


class AurumStoreProvider(AbstractProvider):
    """Serves migrations' phase flags from ``source`` (default: the registry's store).

    Raises:
        ValueError: ``source`` reads its phases from OpenFeature (that would be a circle).
    """

    def __init__(self, source: PhaseSource | None = None) -> None:
        super().__init__()
        if isinstance(source, OpenFeaturePhaseSource):
            raise ValueError("AurumStoreProvider cannot serve phases read from OpenFeature "
                             "(a circle): give it the file or Redis store")
        self._source = source

    @property
    def source(self) -> PhaseSource:
        return self._source if self._source is not None else get_registry().store

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        # Stores that learn of changes (Redis) tell OpenFeature clients which flags changed.
        self.source.add_listener(self._changed)

    def _changed(self, name: str) -> None:
        keys = [semconv.FF_KEY.format(name=name)[: -len("phase")] + field if field != "phase"
                else semconv.FF_KEY.format(name=name) for field in _FIELDS]
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=keys))

    def get_metadata(self) -> Metadata:
        return Metadata(name=semconv.FF_PROVIDER)

    def _resolve(self, flag_key: str, default: T, kinds: type | tuple[type, ...]
                 ) -> FlagResolutionDetails[T]:
        parsed = parse_key(flag_key)
        if parsed is None:
            return FlagResolutionDetails(default, reason=Reason.ERROR,
                                         error_code=ErrorCode.FLAG_NOT_FOUND,
                                         error_message=f"{flag_key} is not a migration flag")
        name, field = parsed
        if not (_TYPES[field] is kinds or _TYPES[field] == kinds):
            return FlagResolutionDetails(default, reason=Reason.ERROR,
                                         error_code=ErrorCode.TYPE_MISMATCH,
                                         error_message=f"{flag_key} is a {field} flag")
        try:
            snapshot = self.source.snapshot()
        except Exception as exc:  # a provider answers, it never raises into the caller
            return _error(default, f"{type(exc).__name__}: {exc}")
        if snapshot.problem is not None:
            return _error(default, str(snapshot.problem))
        if name in snapshot.corrupt:
            return _error(default, snapshot.corrupt[name], ErrorCode.PARSE_ERROR)
        record = snapshot.get(name)
        if record is None:
            return FlagResolutionDetails(default, reason=Reason.DEFAULT)
        value = _FIELDS[field](record)
        return FlagResolutionDetails(
            value, variant=record.phase.value, reason=Reason.STATIC,
            flag_metadata={"phase": record.phase.value, "percent": record.rollout.percent,
                           "compare": record.rollout.compare,
                           "fallback": record.rollout.fallback,
                           "updated_at": record.updated_at})

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, str)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None
                              ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, (float, int))

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[int]:
        details = self._resolve(flag_key, default_value, (float, int))
        if details.error_code is None and isinstance(details.value, float):
            details.value = int(details.value)
        return details

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, bool)

    def resolve_object_details(self, flag_key: str, default_value: Any,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, (dict, list))


def _error(default: T, message: str, code: ErrorCode = ErrorCode.GENERAL
           ) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(default, reason=Reason.ERROR, error_code=code,
                                 error_message=message)


__all__: Sequence[str] = ["AurumStoreProvider", "parse_key"]

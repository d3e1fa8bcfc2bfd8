"""Moved to :mod:`aurum_otel.stores.openfeature`; this module keeps the old import path."""

from __future__ import annotations

from aurum_otel.stores.openfeature import (
    DEFAULT_FLAG_KEY_TEMPLATE,
    URL_FORM,
    OpenFeaturePhaseSource,
)
from aurum_otel.stores.openfeature_overrides import (
    CLEARED_MARK,
    OVERRIDE_MARK,
    OVERRIDES_FILE,
    ProviderOverrideWarning,
)

__all__ = [
    "CLEARED_MARK",
    "DEFAULT_FLAG_KEY_TEMPLATE",
    "OVERRIDES_FILE",
    "OVERRIDE_MARK",
    "URL_FORM",
    "OpenFeaturePhaseSource",
    "ProviderOverrideWarning",
]

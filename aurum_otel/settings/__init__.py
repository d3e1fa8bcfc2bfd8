"""The ``settings`` migration: the legacy hand-rolled loader vs ``AurumSettings``.

``load_settings()`` is routed by the ``settings`` migration's phase (``AURUM_USE_SIMPLIFIED_SETTINGS``,
``AURUM_SETTINGS_MIGRATION_PHASE``, the phase store): the legacy loader in ``legacy``,
:meth:`AurumSettings.from_env` in ``simplified``, both in ``hybrid`` with the other compared as a
shadow. Both return an :class:`AurumSettings`, so a mismatch is reported field by field, with
passwords and the database URL redacted.
"""

from __future__ import annotations

from aurum_otel.migrated import migrated
from aurum_otel.settings.legacy import load_legacy_settings
from aurum_otel.settings.model import AurumSettings, TrinoSettings, variable_name


@migrated("settings")
def load_settings() -> AurumSettings:
    """Load the Aurum platform's settings from the environment, routed by migration phase.

    Raises:
        ConfigurationError: on the simplified path, a variable has a value that is not allowed.
        ValueError: on the legacy path, a number does not parse (the legacy loader's behaviour).
    """
    return load_legacy_settings()


load_settings.simplified(AurumSettings.from_env)

__all__ = [
    "AurumSettings",
    "TrinoSettings",
    "load_legacy_settings",
    "load_settings",
    "variable_name",
]

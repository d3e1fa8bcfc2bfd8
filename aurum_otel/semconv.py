"""The telemetry contract's names, where users and the README find them.

Every name is defined once, in :mod:`aurum_otel.telemetry.semconv`; this module re-exports them so
that ``from aurum_otel import semconv`` keeps working.
"""

from aurum_otel.telemetry.semconv import *  # noqa: F403

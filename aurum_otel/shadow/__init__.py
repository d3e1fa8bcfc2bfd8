"""Shadows: the other implementation, run off the caller's thread and loop, bounded, compared.

- :mod:`~aurum_otel.shadow.snapshot`: the shadow's own copies of instance, arguments and result;
- :mod:`~aurum_otel.shadow.executor`: the bounded pool, its memory budget and deadline reaper;
- :mod:`~aurum_otel.shadow.run`: one run, compared and counted exactly once;
- :mod:`~aurum_otel.shadow.scope`: a routed client's shadows, drained when it closes.
"""

from aurum_otel.shadow.executor import (
    DEFAULT_MAX_BYTES,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_WORKERS,
    HandedOver,
    InlineExecutor,
    Offer,
    ShadowExecutor,
)
from aurum_otel.shadow.run import ShadowRun
from aurum_otel.shadow.scope import ShadowScope

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_WORKERS",
    "HandedOver",
    "InlineExecutor",
    "Offer",
    "ShadowExecutor",
    "ShadowRun",
    "ShadowScope",
]

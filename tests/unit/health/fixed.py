"""A health source that answers the same window statistics for every question (for rules)."""

from __future__ import annotations

from aurum_otel.health import WindowStats


class Fixed:
    """Gives ``stats`` for any migration and window."""

    name = "fixed"

    def __init__(self, stats: WindowStats) -> None:
        self._stats = stats

    def stats(self, migration: str, window: float) -> WindowStats:
        return self._stats

"""Helpers of the forensics tests: a sink in memory, an injected clock, an example builder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aurum_otel.compare import deep_compare
from aurum_otel.forensics.capture import Example, Side


class MemorySink:
    """Keeps each stored line, as the file would."""

    location = "memory"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, name: str, line: str) -> None:
        self.lines.append(line)

    def read(self, name: str, since: float | None = None) -> Iterator[dict[str, Any]]:
        for line in self.lines:
            record = json.loads(line)
            if record["name"] == name and (since is None or record["time"] >= since):
                yield record

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def example(authoritative: Any, shadow: Any, *, name: str = "settings", args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None, when: float = 1_790_000_000.0,
            trace_id: str | None = "0af7651916cd43dd8448eb211c80319c", **extra: Any) -> Example:
    """An example of a mismatch between two returned values, with the default comparator's lines."""
    return Example(
        name=name, phase="hybrid", percent=10.0, compare=100.0, args=args, kwargs=kwargs or {},
        authoritative=Side("legacy", authoritative), shadow=Side("simplified", shadow),
        differences=deep_compare(authoritative, shadow).differences, trace_id=trace_id,
        span_id="b7ad6b7169203331", time=when, **extra)

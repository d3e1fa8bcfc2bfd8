"""Fixtures of the forensics tests: a fresh process capturer, a sink in memory, a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aurum_otel.forensics import capture
from tests.unit.forensics.support import Clock, MemorySink


@pytest.fixture(autouse=True)
def _fresh_capturer() -> Iterator[None]:
    capture.reset()
    yield
    capture.reset()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def clock() -> Clock:
    return Clock()

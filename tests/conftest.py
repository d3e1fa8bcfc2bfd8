from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aurum_otel import testing


def _tooling(variable: str) -> bool:
    """Variables of the test scripts (server endpoints, caches), not settings of the library."""
    return (
        variable.startswith(("AURUM_TEST_", "AURUM_OTEL_"))
        or variable.endswith("_BIN")
        or variable == "AURUM_CACHE_DIR"
        or (variable.startswith("AURUM_TRINO_") and not variable.startswith("AURUM_TRINO__"))
    )


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's ~/.aurum or AURUM_* variables, and each starts from reset()."""
    for variable in list(os.environ):
        if variable.startswith("AURUM_") and not _tooling(variable):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    testing.reset()
    yield
    testing.reset()

"""A Redis that accepts connections and never answers must not slow calls down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("redis")

from aurum_otel import migrated, testing
from aurum_otel.stores.redis import RedisStore


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP server that accepts every connection, reads, and never replies."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_calls_never_wait_on_a_silent_redis(black_hole: str) -> None:
    store = RedisStore.from_url(black_hole, initial_wait=0.2)
    try:
        @migrated("silent")
        def which() -> str:
            return "legacy"

        @which.simplified
        def _which_v2() -> str:
            return "simplified"

        with testing.capture(store=store, refresh_interval=0) as telemetry:
            started = time.perf_counter()
            assert which() == "legacy"
            first = time.perf_counter() - started
            timings = []
            for _ in range(30):
                started = time.perf_counter()
                assert which() == "legacy"
                timings.append(time.perf_counter() - started)
        assert first < 0.5, first  # the one bounded wait for the first load
        assert sum(timings) < 0.3, sum(timings)  # was 0.2 s per refresh, for seconds on end
        spans = telemetry.spans("migrate silent")
        assert {(s.attributes or {})["aurum.migration.phase_source"] for s in spans} == {"invalid"}
        assert {(s.attributes or {})["aurum.migration.config_error"] for s in spans} == {"state"}
        assert "not been reached" in str(store.snapshot().problem)
    finally:
        store.close()

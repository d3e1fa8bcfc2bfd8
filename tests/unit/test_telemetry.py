from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import aurum_otel
from aurum_otel.errors import ConfigurationError
from aurum_otel.setup import resolve_exit_budget, setup_telemetry


def _env(**changes: str) -> dict[str, str]:
    """The environment of a child Python that imports the same aurum_otel as this test."""
    root = str(Path(aurum_otel.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": root, **changes}


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP endpoint that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


APP = textwrap.dedent("""
    import sys, time
    from aurum_otel import migrated
    from aurum_otel.setup import setup_telemetry

    kwargs = {"exit_budget": float(sys.argv[1])} if sys.argv[1] != "env" else {}
    handle = setup_telemetry("exit-test", endpoint=sys.argv[2], export_interval_millis=60_000,
                             metrics_file=False, **kwargs)

    @migrated("exit_test")
    def work() -> int:
        return 1

    for _ in range(50):
        work()
    if sys.argv[3] == "shutdown":
        started = time.monotonic()
        handle.shutdown()
        print(f"shutdown {time.monotonic() - started:.2f}")
""")


@pytest.mark.parametrize(("protocol", "how"), [
    ("grpc", "atexit"), ("grpc", "shutdown"), ("http/protobuf", "env")])
def test_exit_is_bounded_by_the_exit_budget_with_a_black_hole_collector(
    black_hole: int, tmp_path: Path, protocol: str, how: str
) -> None:
    """Issue 13.7: a collector that accepts and never answers must not hold the exit for 30 s."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    # The argument wins over the variable: with it, the variable says 30 s.
    env = _env(OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
               AURUM_EXIT_BUDGET="1" if how == "env" else "30")
    budget = "env" if how == "env" else "1"
    started = time.monotonic()
    # The whole run, interpreter start and imports included; the budget is 1 s.
    result = subprocess.run(
        [sys.executable, str(script), budget, f"http://127.0.0.1:{black_hole}",
         "shutdown" if how == "shutdown" else "exit"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 1 + 6, f"exit took {elapsed:.1f} s with a 1 s budget"
    if how == "shutdown":
        assert float(result.stdout.split()[-1]) < 1.5


def test_the_exit_budget_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_exit_budget(None) == 3.0
    monkeypatch.setenv("AURUM_EXIT_BUDGET", "0.5")
    assert resolve_exit_budget(None) == 0.5 and resolve_exit_budget(2) == 2.0
    for bad in ("soon", "nan", "-1", "inf"):
        monkeypatch.setenv("AURUM_EXIT_BUDGET", bad)
        with pytest.raises(ConfigurationError, match="AURUM_EXIT_BUDGET"):
            resolve_exit_budget(None)
    with pytest.raises(ConfigurationError, match="exit_budget"):
        setup_telemetry(exit_budget=float("nan"), otlp=False, set_global=False)


GUIDE_APP = textwrap.dedent("""
    import sys
    from aurum_otel.settings import load_settings
    from aurum_otel.setup import setup_telemetry

    for _ in range(4):
        load_settings()
    if sys.argv[1] == "setup":  # the lazy writer is reused: no count is written twice
        setup_telemetry(otlp=False)
    for _ in range(3):
        load_settings()
""")


@pytest.mark.parametrize(("flag", "setup", "written"), [
    ("1", "none", True), ("true", "setup", True), (None, "none", False), ("0", "none", False)])
def test_the_guides_monitoring_flag_keeps_the_metrics_file_without_setup(
    tmp_path: Path, flag: str | None, setup: str, written: bool
) -> None:
    """Issue 13.11: `export AURUM_ENABLE_MIGRATION_MONITORING=1` and the loaders keep the file."""
    script = tmp_path / "guide.py"
    script.write_text(GUIDE_APP)
    state = tmp_path / "aurum"
    env = {k: v for k, v in _env().items() if k != "AURUM_ENABLE_MIGRATION_MONITORING"}
    env["AURUM_STATE_DIR"] = str(state)
    if flag is not None:
        env["AURUM_ENABLE_MIGRATION_MONITORING"] = flag
    result = subprocess.run([sys.executable, str(script), setup], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    path = state / "migration_metrics.json"
    assert path.exists() is written
    if written:
        section = json.loads(path.read_text())["settings_migration"]
        assert section["legacy_calls"] == 7 and section["migration_phase"] == "legacy"

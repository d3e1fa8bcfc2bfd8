"""Fixtures for the telemetry-pipeline tests: the real collector, Jaeger and Prometheus on loopback.

The servers are started by ``scripts/servers.sh start all`` and announced with
``eval "$(bash scripts/servers.sh env)"`` (``scripts/test.sh`` does both). A test that needs them
is skipped only when those variables are absent; when they are set but a server does not answer,
the test fails and says which server and how to start it.

The root ``tests/conftest.py`` strips every ``AURUM_*`` variable from the environment around each
test, so the server addresses (and the environment the server script runs with) are read here, at
import time. Nothing in this file is autouse: the Trino tests beside it are not affected.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "apps" / "app.py"
SERVERS_SCRIPT = ROOT / "scripts" / "servers.sh"

# Read before the root conftest's autouse fixture strips AURUM_* from os.environ.
_IMPORT_ENV = dict(os.environ)
PROMETHEUS_VAR = "AURUM_OTEL_PROMETHEUS_URL"
JAEGER_VAR = "AURUM_OTEL_JAEGER_URL"
OTLP_VAR = "AURUM_OTEL_OTLP_GRPC_ENDPOINT"
REQUIRED = (PROMETHEUS_VAR, JAEGER_VAR, OTLP_VAR)
HOW_TO_START = 'run `bash scripts/servers.sh start all` and `eval "$(bash scripts/servers.sh env)"`'

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.5,
              what: str = "condition") -> tuple[T, float]:
    """Call ``probe`` until it returns something other than ``None``; (that value, seconds taken)."""
    started = time.monotonic()
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (requests.RequestException, KeyError, ValueError) as exc:
            value, last_error = None, exc
        if value is not None:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class Prometheus:
    """The Prometheus HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.url}/api/v1/query", params={"query": expression},
                                    timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"Prometheus rejected {expression!r}: HTTP {response.status_code} "
                                 f"{body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expression: str, *labels: str) -> dict[tuple[str, ...], float]:
        """The vector's values keyed by the given labels."""
        return {tuple(sample["metric"].get(label, "") for label in labels): float(sample["value"][1])
                for sample in self.query(expression)}

    def alerts(self) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.url}/api/v1/alerts", timeout=10)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts

    def rule_groups(self) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.url}/api/v1/rules", timeout=10)
        response.raise_for_status()
        groups: list[dict[str, Any]] = response.json()["data"]["groups"]
        return groups


class Jaeger:
    """The Jaeger query HTTP API (``/api/traces``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def traces(self, service: str, *, start_us: int | None = None, limit: int = 500
               ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"service": service, "limit": limit, "lookback": "1h"}
        if start_us is not None:
            params["start"] = start_us
            params["end"] = int((time.time() + 3600) * 1_000_000)
        response = self.session.get(f"{self.url}/api/traces", params=params, timeout=10)
        if response.status_code == 404:  # the service is not known yet
            return []
        response.raise_for_status()
        data: list[dict[str, Any]] | None = response.json().get("data")
        return data or []


class Collector:
    """Stop and start the collector through the project's server script."""

    def __init__(self, health_url: str, env: dict[str, str]) -> None:
        self.health_url = health_url
        self.env = env

    def _script(self, *args: str) -> None:
        result = subprocess.run(["bash", str(SERVERS_SCRIPT), *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise AssertionError(f"servers.sh {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr[-2000:]}")

    def stop(self) -> None:
        self._script("stop", "otelcol")

    def start(self) -> None:
        self._script("start", "otelcol")

    def healthy(self) -> bool:
        try:
            return requests.get(self.health_url, timeout=2).ok
        except requests.RequestException:
            return False


@dataclass
class Pipeline:
    """The running servers and how to reach them."""

    prometheus: Prometheus
    jaeger: Jaeger
    collector: Collector
    otlp_endpoint: str
    server_env: dict[str, str] = field(repr=False, default_factory=dict)


def _answers(url: str) -> str | None:
    """None when ``url`` answers 2xx, else why not."""
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.ok else f"HTTP {response.status_code}"


def _tcp_answers(endpoint: str) -> str | None:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4317), 5):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """The collector, Jaeger and Prometheus; skip without their variables, fail if one is down."""
    missing = [name for name in REQUIRED if not _IMPORT_ENV.get(name)]
    if missing:
        pytest.skip(f"telemetry servers not configured ({', '.join(missing)} unset): {HOW_TO_START}")
    prometheus_url = _IMPORT_ENV[PROMETHEUS_VAR].rstrip("/")
    jaeger_url = _IMPORT_ENV[JAEGER_VAR].rstrip("/")
    otlp = _IMPORT_ENV[OTLP_VAR]
    health_url = _IMPORT_ENV.get("AURUM_OTEL_COLLECTOR_HEALTH_URL", "http://127.0.0.1:13133/")
    problems = []
    for server, problem in (
        (f"Prometheus at {prometheus_url} ({PROMETHEUS_VAR})", _answers(f"{prometheus_url}/-/ready")),
        (f"Jaeger at {jaeger_url} ({JAEGER_VAR})", _answers(f"{jaeger_url}/api/services")),
        (f"the collector's OTLP gRPC port {otlp} ({OTLP_VAR})", _tcp_answers(otlp)),
        (f"the collector's health check {health_url}", _answers(health_url)),
    ):
        if problem is not None:
            problems.append(f"{server}: {problem}")
    if problems:
        pytest.fail("telemetry servers are configured but not answering:\n  "
                    + "\n  ".join(problems) + f"\n{HOW_TO_START} (status: bash scripts/servers.sh "
                    "status)", pytrace=False)
    return Pipeline(Prometheus(prometheus_url), Jaeger(jaeger_url),
                    Collector(health_url, dict(_IMPORT_ENV)), otlp, dict(_IMPORT_ENV))


def run_script(pipeline: Pipeline, state_dir: Path, source: str, *args: str,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a short-lived app (``argv``: ``args``), exporting to ``pipeline``
    over gRPC with its phase store in ``state_dir``; it must exit 0."""
    script = state_dir / "app.py"
    script.write_text(source)
    env = {k: v for k, v in {**os.environ, **pipeline.server_env}.items()
           if not k.startswith("AURUM_") or k.startswith("AURUM_OTEL_")}
    env.update({"AURUM_STATE_DIR": str(state_dir), "PYTHONPATH": str(ROOT),
                "AURUM_EXIT_BUDGET": "10", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    result = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                            text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


class AppProcess:
    """``apps/app.py`` in a subprocess: JSON commands in on stdin, JSON answers out on stdout."""

    def __init__(self, *, service: str, migration: str, state_dir: Path, otlp_endpoint: str,
                 log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.service = service
        self.migration = migration
        self.state_dir = state_dir
        self.log_path = log_path
        env = {k: v for k, v in _IMPORT_ENV.items()
               if not k.startswith(("AURUM_", "OTEL_"))}
        env.update({
            "AURUM_STATE_DIR": str(state_dir),
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            **(extra_env or {}),
        })
        self._log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, str(APP), "--service", service, "--migration", migration],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
            cwd=ROOT,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready = self._answer(timeout=60)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the app did not answer within {timeout:.0f} s; its log:\n"
                                 f"{self.log()}") from None
        if line is None:
            raise AssertionError(f"the app exited ({self.process.wait()}); its log:\n{self.log()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"the app failed: {answer['error']}\n{answer.get('traceback')}")
        return answer

    def send(self, op: str, *, timeout: float = 120, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def log(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("exit", timeout=30)
                self.process.wait(10)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def unique() -> str:
    """A short id: migration names and service names built from it never meet earlier runs'."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def start_app(pipeline: Pipeline, tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """Start ``apps/app.py`` subprocesses (stopped after the test) exporting to the collector."""
    apps: list[AppProcess] = []

    def start(*, service: str, migration: str, state_dir: Path | None = None,
              extra_env: dict[str, str] | None = None) -> AppProcess:
        directory = state_dir or tmp_path / f"state-{len(apps)}"
        directory.mkdir(parents=True, exist_ok=True)
        app = AppProcess(service=service, migration=migration, state_dir=directory,
                         otlp_endpoint=pipeline.otlp_endpoint,
                         log_path=tmp_path / f"app-{len(apps)}.log", extra_env=extra_env)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.close()

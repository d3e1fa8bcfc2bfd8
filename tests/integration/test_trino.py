"""Both Trino clients against a real Trino server (started by ``scripts/trino.sh start``).

Needs ``eval "$(scripts/trino.sh env)"``: skipped when ``AURUM_TEST_TRINO_PORT`` is absent. The
outage test cuts the network with a local TCP proxy, so it never disturbs the shared server; the
test that stops and restarts the server itself runs only with ``AURUM_TEST_TRINO_RESTART=1``.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from aurum_otel import ConfigurationError, FileStore, MismatchReport, Phase, Rollout, testing
from aurum_otel.database import (
    BreakerPolicy,
    BreakerState,
    CircuitOpenError,
    DatabaseError,
    DatabaseUnavailableError,
    LegacyOptions,
    LegacyTrinoClient,
    PoolPolicy,
    RetryPolicy,
    Rows,
    SimpleTrinoClient,
    get_trino_client,
    rows_comparator,
)
from aurum_otel.database.config import ConnectionConfig
from aurum_otel.hooks import BaseHooks
from aurum_otel.settings import AurumSettings, TrinoSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        "AURUM_TEST_TRINO_PORT" not in os.environ,
        reason="no Trino: run scripts/trino.sh start and eval \"$(scripts/trino.sh env)\"",
    ),
]

HOST = os.environ.get("AURUM_TEST_TRINO_HOST", "127.0.0.1")
PORT = int(os.environ.get("AURUM_TEST_TRINO_PORT", "18080"))
HTTPS_PORT = int(os.environ.get("AURUM_TEST_TRINO_HTTPS_PORT", "18443"))
PASSWORD = os.environ.get("AURUM_TEST_TRINO_PASSWORD", "")
CA = os.environ.get("AURUM_TEST_TRINO_CA", "")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "trino.sh"
# Read at import, before the autouse fixture strips AURUM_* from the environment: the script must
# restart the server these tests were pointed at (AURUM_CACHE_DIR, ports), not the default one.
SCRIPT_ENV = {**os.environ}

QUERIES = {
    "ordered-nations": ("SELECT nationkey, name, regionkey FROM nation ORDER BY nationkey",
                        None),
    "join-group": ("SELECT r.name, count(*) AS nations FROM region r "
                   "JOIN nation n ON n.regionkey = r.regionkey GROUP BY r.name", None),
    "orders-by-priority": ("SELECT orderpriority, count(*), sum(totalprice) FROM orders "
                           "WHERE orderdate >= DATE '1995-01-01' GROUP BY 1", None),
    "parameters": ("SELECT custkey, name, acctbal FROM customer "
                   "WHERE nationkey = ? AND acctbal > ?", (5, 1000)),
    "lineitem-summary": ("SELECT returnflag, linestatus, count(*), sum(quantity) "
                         "FROM lineitem GROUP BY 1, 2 ORDER BY 1, 2", None),
}


def settings(
    catalog: str = "tpch", schema: str = "tiny", *, port: int = PORT, **changes: Any
) -> AurumSettings:
    return AurumSettings(trino=TrinoSettings(
        host=HOST, port=port, catalog=catalog, schema=schema, **changes,
    ))


def https_settings(password: str = PASSWORD) -> AurumSettings:
    return settings(port=HTTPS_PORT, http_scheme="https", password=SecretStr(password),
                    user="aurum", verify=CA or True)


def set_phase(state_dir: Path, phase: Phase, rollout: Rollout | None = None) -> None:
    FileStore.in_dir(state_dir).transition("database", phase, rollout, actor="test", reason="it")


def wait_until_ready(timeout: float = 240.0) -> None:
    client = SimpleTrinoClient(ConnectionConfig.from_settings(settings().trino))
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if client.query("SELECT 1") == [(1,)]:
                    return
            except DatabaseError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1.0)
    finally:
        client.close()


@pytest.fixture(scope="module", autouse=True)
def _trino_ready() -> None:
    wait_until_ready()


class Reports(BaseHooks):
    def __init__(self) -> None:
        self.reports: list[MismatchReport] = []

    def on_mismatch(self, report: MismatchReport) -> None:
        self.reports.append(report)


def drop(client: Any, how: Callable[[Rows], Rows]) -> None:
    """Make the routed client's simplified side return ``how(rows)`` instead of its rows."""
    simple = client.simplified_client
    real = simple.query

    def query(self: SimpleTrinoClient, sql: str, params: Any = None) -> Rows:
        return how(real(sql, params))

    simple.query = types.MethodType(query, simple)


def exported_text(telemetry: testing.CapturedTelemetry) -> list[str]:
    texts = []
    for span in telemetry.spans():
        texts.append(f"{span.name} {dict(span.attributes or {})} {span.status.description}")
        texts.extend(f"{event.name} {dict(event.attributes or {})}" for event in span.events)
    for metric in ("aurum.migration.calls", "aurum.migration.comparisons",
                   "aurum.migration.duration"):
        texts.extend(str(attrs) for attrs, _ in telemetry.points(metric))
    return texts


# --- same rows from both clients -------------------------------------------------------------


@pytest.mark.parametrize(("sql", "params"), QUERIES.values(), ids=QUERIES.keys())
def test_both_clients_return_the_same_rows(sql: str, params: tuple[Any, ...] | None) -> None:
    config = ConnectionConfig.from_settings(settings().trino)
    legacy, simple = LegacyTrinoClient(config), SimpleTrinoClient(config)
    try:
        a, b = legacy.query(sql, params), simple.query(sql, params)
    finally:
        legacy.close()
        simple.close()
    assert len(a) > 0 and a.columns and a.columns == b.columns
    assert a.ordered == ("ORDER BY" in sql)
    result = rows_comparator(a, b)
    assert result.equal, result.differences


def test_hybrid_shadows_of_tpch_queries_all_match(tmp_path: Path) -> None:
    client = get_trino_client("tpch", settings=settings())
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=100))
            for sql, params in QUERIES.values():
                client.query(sql, params)
            telemetry.wait_for_shadows(30)
            assert telemetry.counts("aurum.migration.comparisons", comparison="match") == len(
                QUERIES
            )
            assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 0
            db_spans = [s for s in telemetry.spans()
                        if (s.attributes or {}).get("db.system.name") == "trino"]
    finally:
        client.close()
    assert len(db_spans) == 2 * len(QUERIES)
    attrs = dict(db_spans[0].attributes or {})
    assert attrs["server.address"] == HOST and attrs["server.port"] == PORT
    assert attrs["db.namespace"] == "tpch.tiny"


# --- a real difference is caught -------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [(lambda rows: Rows(rows[:-1], rows.columns, ordered=rows.ordered),
      "row only in authoritative (x1): tuple(len 3)#"),  # where and how, never the values
     (lambda rows: Rows([r[:-1] for r in rows], rows.columns[:-1], ordered=rows.ordered),
      "columns: (nationkey, name, regionkey) != (nationkey, name)")],
    ids=["dropped-row", "dropped-column"],
)
def test_shadow_comparison_catches_a_real_difference(
    tmp_path: Path, how: Callable[[Rows], Rows], expected: str
) -> None:
    hooks = Reports()
    client = get_trino_client("tpch", settings=settings(), hooks=hooks)
    drop(client, how)
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
            rows = client.query(QUERIES["ordered-nations"][0])
            telemetry.wait_for_shadows(30)
            assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
    finally:
        client.close()
    assert len(rows) == 25 and len(rows.columns) == 3  # the caller got legacy's full answer
    (report,) = hooks.reports
    assert any(line.startswith(expected) for line in report.differences), report.differences
    assert "UNITED STATES" not in "; ".join(report.differences)


# --- writes land once ------------------------------------------------------------------------


def test_hybrid_inserts_into_memory_land_exactly_once(tmp_path: Path) -> None:
    table = f"memory.default.it_{uuid.uuid4().hex[:12]}"
    client = get_trino_client("memory", settings=settings("memory", "default"))
    client.legacy_client.execute(f"CREATE TABLE {table} (id bigint, name varchar)")
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=100))
            counts = [client.execute(f"INSERT INTO {table} VALUES (?, ?)", (i, f"row-{i}"))
                      for i in range(20)]
            rows = client.query(f"SELECT id, count(*) FROM {table} GROUP BY id")
            telemetry.wait_for_shadows(30)
            served = [(s.attributes or {}).get("aurum.migration.implementation")
                      for s in telemetry.spans("migrate database")]
            shadows = telemetry.spans("shadow database")
            matches = telemetry.counts("aurum.migration.comparisons", comparison="match")
    finally:
        client.legacy_client.execute(f"DROP TABLE {table}")
        client.close()
    assert counts == [1] * 20
    assert sorted(rows) == [(i, 1) for i in range(20)]
    assert {"legacy", "simplified"} <= set(served[:20])
    assert len(shadows) == 1 and matches == 1  # only the read was shadowed


# --- password authentication over https ------------------------------------------------------


@pytest.mark.skipif(not PASSWORD, reason="AURUM_TEST_TRINO_PASSWORD is not set")
def test_password_auth_over_https_never_leaks_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hooks = Reports()
    client = get_trino_client("tpch", settings=https_settings(), hooks=hooks)
    drop(client, lambda rows: Rows(rows[:-1], rows.columns, ordered=rows.ordered))
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
            assert client.query("SELECT current_user") == [("aurum",)]
            client.query(QUERIES["ordered-nations"][0])
            telemetry.wait_for_shadows(30)
            texts = exported_text(telemetry)
            assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 2
    finally:
        client.close()

    wrong = get_trino_client("tpch", settings=https_settings(password="not-" + PASSWORD))
    with pytest.raises(DatabaseError) as refused:
        wrong.query("SELECT 1")
    wrong.close()
    assert "401" in str(refused.value)

    with pytest.raises(ConfigurationError) as insecure:
        get_trino_client("tpch", settings=settings(password=SecretStr(PASSWORD))).query("SELECT 1")
    assert "AURUM_TRINO__HTTP_SCHEME=https" in str(insecure.value)

    assert len(hooks.reports) == 2 and texts
    everything = texts + [r.getMessage() for r in caplog.records] + [
        f"{r.summary()} {r.differences}" for r in hooks.reports
    ] + [str(refused.value), repr(refused.value), str(insecure.value)]
    assert all(PASSWORD not in text for text in everything)


# --- outages ---------------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to Trino; ``cut()`` refuses and drops every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the
            # socket listening until that call returns.
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def run_workload(
    client: Any, expected: Rows, sql: str, seconds: float, outcomes: dict[str, int]
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            rows = client.query(sql)
        except CircuitOpenError:
            outcomes["circuit_open"] += 1
        except DatabaseUnavailableError:
            outcomes["unavailable"] += 1
        else:
            assert rows_comparator(expected, rows).equal, "a wrong result during the outage"
            outcomes["ok"] += 1
        time.sleep(0.02)


def outage_client(port: int) -> Any:
    options = LegacyOptions(
        retry=RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1),
        breaker=BreakerPolicy(failure_threshold=3, reset_timeout=1.0),
        pool=PoolPolicy(health_check_after=0.5),
    )
    return get_trino_client("tpch", settings=settings(port=port), options=options)


def test_outage_counts_errors_opens_the_breaker_and_recovers(tmp_path: Path) -> None:
    sql = QUERIES["ordered-nations"][0]
    proxy = TcpProxy((HOST, PORT))
    proxy.start()
    client = outage_client(proxy.port)
    outcomes = {"ok": 0, "unavailable": 0, "circuit_open": 0}
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=0))
            expected = client.legacy_client.query(sql)
            run_workload(client, expected, sql, 1.0, outcomes)
            ok_before = outcomes["ok"]
            proxy.cut()
            run_workload(client, expected, sql, 2.0, outcomes)
            assert client.legacy_client.breaker.opened >= 1, outcomes
            proxy.start()
            recovered_at = time.monotonic()
            while client.legacy_client.breaker.state is not BreakerState.CLOSED or (
                outcomes["ok"] == ok_before
            ):
                run_workload(client, expected, sql, 0.2, outcomes)
                assert time.monotonic() - recovered_at < 30, "did not recover"
            errors = {
                impl: telemetry.counts("aurum.migration.calls", implementation=impl,
                                       outcome="error")
                for impl in ("legacy", "simplified")
            }
    finally:
        client.close()
        proxy.cut()
    assert outcomes["ok"] > ok_before > 0
    assert outcomes["unavailable"] + outcomes["circuit_open"] > 0
    assert outcomes["circuit_open"] > 0  # the legacy breaker failed fast while open
    assert errors["legacy"] > 0 and errors["simplified"] > 0
    assert client.legacy_client.breaker.closed >= 1


@pytest.mark.skipif(os.environ.get("AURUM_TEST_TRINO_RESTART") != "1",
                    reason="restarts the shared Trino server: set AURUM_TEST_TRINO_RESTART=1")
def test_server_restart_mid_run(tmp_path: Path) -> None:
    sql = QUERIES["ordered-nations"][0]
    client = outage_client(PORT)
    outcomes = {"ok": 0, "unavailable": 0, "circuit_open": 0}
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=0))
            expected = client.legacy_client.query(sql)
            subprocess.run(["bash", str(SCRIPT), "stop"], check=True, timeout=300,
                           env=SCRIPT_ENV)
            run_workload(client, expected, sql, 2.0, outcomes)
            assert client.legacy_client.breaker.opened >= 1
            restarter = subprocess.Popen(["bash", str(SCRIPT), "start"], env=SCRIPT_ENV)
            started = time.monotonic()
            while restarter.poll() is None or outcomes["ok"] == 0:
                run_workload(client, expected, sql, 0.5, outcomes)
                assert time.monotonic() - started < 300, "Trino did not come back"
            errors = telemetry.counts("aurum.migration.calls", outcome="error")
    finally:
        client.close()
    assert restarter.returncode == 0
    assert outcomes["ok"] > 0 and outcomes["unavailable"] + outcomes["circuit_open"] > 0
    assert errors > 0


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    yield
    testing.reset()


def test_a_degraded_simplified_path_is_rolled_back_automatically(tmp_path: Path) -> None:
    """Only the simple client's network fails: health sees it, the controller rolls back."""
    from aurum_otel.client import migrate_client
    from aurum_otel.control import Controller
    from aurum_otel.health import HealthPolicy, default_rules

    sql = QUERIES["ordered-nations"][0]
    proxy = TcpProxy((HOST, PORT))
    proxy.start()
    direct = outage_client(PORT)
    proxied = outage_client(proxy.port)
    client = migrate_client("database", direct.legacy_client, proxied.simplified_client,
                            methods=("query", "execute"), writes=("execute",),
                            comparators={"query": rows_comparator})
    outcomes = {"ok": 0, "unavailable": 0, "circuit_open": 0}
    try:
        with testing.capture(state_dir=tmp_path) as telemetry:
            set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=0, fallback=True))
            controller = Controller(
                "database", source=telemetry.health, bake=3_600, rollback_after=2,
                policy=HealthPolicy(default_rules(min_samples=10), window=30),
            )
            expected = direct.legacy_client.query(sql)
            run_workload(client, expected, sql, 2.0, outcomes)
            assert controller.tick().action == "held"
            proxy.cut()
            cut_at = time.monotonic()
            tick = None
            while time.monotonic() - cut_at < 60:
                run_workload(client, expected, sql, 1.0, outcomes)
                tick = controller.tick()
                if tick.action == "rolled_back":
                    break
            rolled_back_after = time.monotonic() - cut_at
            assert tick is not None and tick.action == "rolled_back", tick
            before = telemetry.counts("aurum.migration.calls", implementation="simplified")
            run_workload(client, expected, sql, 1.0, outcomes)
            after = telemetry.counts("aurum.migration.calls", implementation="simplified")
            errors = {impl: telemetry.counts("aurum.migration.calls", implementation=impl,
                                             outcome="error") for impl in ("legacy", "simplified")}
    finally:
        client.close()
        proxied.close()
        proxy.cut()
    print(f"simplified network cut -> automatic rollback in {rolled_back_after:.1f} s; "
          f"errors {errors}; callers: {outcomes}")
    assert after == before  # every call after the rollback went to legacy
    assert errors["simplified"] > 0 and errors["legacy"] == 0
    assert outcomes["unavailable"] + outcomes["circuit_open"] == 0  # fallback shielded callers

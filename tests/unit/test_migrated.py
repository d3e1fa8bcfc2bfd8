from __future__ import annotations

import asyncio
import inspect
import logging
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import (
    BaseHooks,
    FileStore,
    MigrationDefinitionError,
    Phase,
    Rollout,
    migrated,
    routing_key,
    testing,
)


class Boom(RuntimeError):
    pass


def set_phase(path: Path, phase: Phase, rollout: Rollout | None = None, name: str = "m") -> None:
    FileStore.in_dir(path).transition(name, phase, rollout, actor="test", reason="test")


def make(legacy_raises: bool = False, simplified_raises: bool = False) -> tuple[Any, list[str]]:
    ran: list[str] = []

    @migrated("m")
    def fetch(x: int) -> dict[str, int]:
        ran.append("legacy")
        if legacy_raises:
            raise Boom("legacy")
        return {"value": x}

    @fetch.simplified
    def _fetch_v2(x: int) -> dict[str, int]:
        ran.append("simplified")
        if simplified_raises:
            raise Boom("simplified")
        return {"value": x}

    return fetch, ran


# phase, rollout, simplified raises, expected ran (authoritative first), span impl, outcome
MATRIX = [
    ("legacy", None, False, ["legacy"], "legacy", "success"),
    ("simplified", None, False, ["simplified"], "simplified", "success"),
    ("simplified", None, True, ["simplified"], "simplified", "error"),
    ("hybrid", Rollout(percent=100, compare=0), False, ["simplified"], "simplified", "success"),
    ("hybrid", Rollout(percent=100, compare=0, fallback=True), True, ["simplified", "legacy"],
     "legacy", "fallback"),
    ("hybrid", Rollout(percent=100, compare=0, fallback=False), True, ["simplified"],
     "simplified", "error"),
    ("hybrid", Rollout(percent=0, compare=0), True, ["legacy"], "legacy", "success"),
]


@pytest.mark.parametrize(
    ("phase", "rollout", "simplified_raises", "ran_expected", "implementation", "outcome"),
    MATRIX,
    ids=[f"{m[0]}-{m[1] and f'p{m[1].percent:g}-fb{int(m[1].fallback)}'}-"
         f"{'raises' if m[2] else 'ok'}" for m in MATRIX],
)
def test_phase_rollout_outcome_matrix(
    tmp_path: Path, phase: str, rollout: Rollout | None, simplified_raises: bool,
    ran_expected: list[str], implementation: str, outcome: str,
) -> None:
    fetch, ran = make(simplified_raises=simplified_raises)
    set_phase(tmp_path, Phase(phase), rollout)
    with testing.capture(state_dir=tmp_path) as telemetry:
        if outcome == "error":
            with pytest.raises(Boom):
                fetch(7)
        else:
            assert fetch(7) == {"value": 7}
        telemetry.wait_for_shadows()
        assert ran == ran_expected
        (span,) = telemetry.spans("migrate m")
        assert dict(span.attributes or {}).items() >= {
            "aurum.migration.name": "m",
            "aurum.migration.phase": phase,
            "aurum.migration.implementation": implementation,
            "aurum.migration.outcome": outcome,
        }.items()
        (event,) = [e for e in span.events if e.name == "feature_flag.evaluation"]
        assert dict(event.attributes or {}) == {
            "feature_flag.key": "aurum.migration.m.phase",
            "feature_flag.result.variant": phase,
            "feature_flag.provider.name": "aurum-otel",
            "feature_flag.result.reason": "split" if phase == "hybrid" else "static",
        }
        if outcome == "error":
            assert span.attributes["error.type"].endswith("Boom")  # type: ignore[index]
            assert span.status.status_code.name == "ERROR"
        assert telemetry.counts("aurum.migration.calls", implementation=implementation,
                                outcome=outcome, role="authoritative", phase=phase) == 1
        assert telemetry.durations(implementation=implementation, role="authoritative") == 1
        if outcome == "fallback":
            assert telemetry.counts("aurum.migration.calls", implementation="simplified",
                                    outcome="error") == 1


def test_pure_shadow_compares_and_nests_the_shadow_span(tmp_path: Path) -> None:
    fetch, ran = make()
    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert fetch(3) == {"value": 3}
        telemetry.wait_for_shadows()
        assert ran == ["legacy", "simplified"]
        (parent,) = telemetry.spans("migrate m")
        (shadow,) = telemetry.spans("shadow m")
        assert shadow.parent is not None and shadow.parent.span_id == parent.context.span_id
        assert shadow.attributes["aurum.migration.comparison"] == "match"  # type: ignore[index]
        assert shadow.attributes["aurum.migration.implementation"] == "simplified"  # type: ignore[index]
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 1
        assert telemetry.counts("aurum.migration.calls", role="shadow",
                                implementation="simplified") == 1


def test_mismatch_is_reported_with_field_differences(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reports: list[Any] = []

    class Hooks(BaseHooks):
        def on_mismatch(self, report: Any) -> None:
            reports.append(report)

    @migrated("m", hooks=Hooks())
    def load() -> dict[str, Any]:
        return {"port": 8080, "password": "hunter2"}

    @load.simplified
    def _load() -> dict[str, Any]:
        return {"port": "8080", "password": "hunter3"}

    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=0, compare=100))
    with caplog.at_level(logging.INFO), testing.capture(state_dir=tmp_path) as telemetry:
        load()
        telemetry.wait_for_shadows()
        (report,) = reports
        assert report.result.value == "mismatch"
        assert "port: int != str" in report.differences
        assert "password: <redacted> != <redacted>" in report.differences
        assert telemetry.counts("aurum.migration.comparisons", comparison="mismatch") == 1
    assert "hunter" not in caplog.text and "port: int != str" in caplog.text


async def _async_case(tmp_path: Path) -> None:
    ran: list[str] = []

    @migrated("m")
    async def fetch(x: int) -> int:
        """Fetch x."""
        await asyncio.sleep(0)
        ran.append("legacy")
        return x

    @fetch.simplified
    async def _fetch(x: int) -> int:
        ran.append("simplified")
        return x

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch x."
    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=100, compare=100))
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert await fetch(5) == 5
        for _ in range(100):
            if telemetry.spans("shadow m"):
                break
            await asyncio.sleep(0.01)
        (span,) = telemetry.spans("migrate m")
        assert span.attributes["aurum.migration.implementation"] == "simplified"  # type: ignore[index]
        # The span covers the coroutine's body, not just the creation of the coroutine.
        assert span.end_time is not None and span.start_time is not None
        (shadow,) = telemetry.spans("shadow m")
        assert shadow.attributes["aurum.migration.comparison"] == "match"  # type: ignore[index]
    assert ran == ["simplified", "legacy"]


def test_async_functions(tmp_path: Path) -> None:
    asyncio.run(_async_case(tmp_path))


def test_mixing_sync_and_async_is_refused() -> None:
    @migrated("m")
    def legacy() -> int:
        return 1

    async def simplified() -> int:
        return 1

    with pytest.raises(MigrationDefinitionError, match="both sync or both async"):
        legacy.simplified(simplified)


class Repository:
    """A client with routed methods."""

    def __init__(self, base: int) -> None:
        self.base = base

    @migrated("m")
    def get(self, x: int) -> str:
        """Get it."""
        return f"legacy {self.base + x}"

    @get.simplified
    def _get_v2(self, x: int) -> str:
        return f"simplified {self.base + x}"

    @migrated("m")
    @classmethod
    def build(cls, base: int) -> str:
        return f"legacy {cls.__name__} {base}"

    @build.simplified
    @classmethod
    def _build_v2(cls, base: int) -> str:
        return f"simplified {cls.__name__} {base}"

    @migrated("m")
    @staticmethod
    def pure(x: int) -> str:
        return f"legacy {x}"

    @pure.simplified
    @staticmethod
    def _pure_v2(x: int) -> str:
        return f"simplified {x}"


@pytest.mark.parametrize("phase", ["legacy", "simplified"])
def test_methods_classmethods_staticmethods(tmp_path: Path, phase: str) -> None:
    set_phase(tmp_path, Phase(phase))
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert Repository(10).get(1) == f"{phase} 11"
        assert Repository.get(Repository(20), 1) == f"{phase} 21"
        assert Repository.build(3) == f"{phase} Repository 3"
        assert Repository(0).build(4) == f"{phase} Repository 4"
        assert Repository.pure(5) == f"{phase} 5"
        assert len(telemetry.spans("migrate m")) == 5


def test_metadata_is_kept() -> None:
    def original(a: int, *, b: str = "x") -> list[int]:
        """Doc."""
        return [a]

    routed = migrated("m")(original)
    assert routed.__name__ == "original"
    assert routed.__qualname__ == original.__qualname__
    assert routed.__doc__ == "Doc."
    assert inspect.signature(routed) == inspect.signature(original)
    assert not inspect.iscoroutinefunction(routed)
    assert routed.migration_name == "m" and routed.legacy is original
    assert Repository.get.__doc__ == "Get it."


def test_routing_key_is_sticky(tmp_path: Path) -> None:
    fetch, ran = make()
    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=0))
    with testing.capture(state_dir=tmp_path):
        served = {}
        for user in range(40):
            for _ in range(3):
                ran.clear()
                with routing_key(f"user-{user}"):
                    fetch(1)
                served.setdefault(user, set()).add(ran[0])
    assert all(len(impls) == 1 for impls in served.values())
    assert {next(iter(i)) for i in served.values()} == {"legacy", "simplified"}


def test_key_extractor(tmp_path: Path) -> None:
    ran: list[str] = []

    @migrated("m", key=lambda tenant, amount: tenant)
    def charge(tenant: str, amount: int) -> int:
        ran.append("legacy")
        return amount

    @charge.simplified
    def _charge(tenant: str, amount: int) -> int:
        ran.append("simplified")
        return amount

    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=0))
    with testing.capture(state_dir=tmp_path):
        for amount in range(20):
            charge("acme", amount)
    assert len(set(ran)) == 1


def test_no_simplified_registered_serves_legacy(tmp_path: Path) -> None:
    @migrated("m")
    def only_legacy() -> str:
        return "legacy"

    set_phase(tmp_path, Phase.SIMPLIFIED)
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert only_legacy() == "legacy"
        (span,) = telemetry.spans()
        assert span.attributes["aurum.migration.phase_source"] == "no-simplified"  # type: ignore[index]


def test_monitoring_off_does_no_telemetry_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURUM_MIGRATION_M_MONITORING", "0")
    fetch, ran = make()
    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=100, compare=100))
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert fetch(1) == {"value": 1}
        telemetry.wait_for_shadows()
        assert ran == ["simplified"]  # still routed, never shadowed
        assert telemetry.spans() == []
        assert telemetry.points("aurum.migration.calls") == []


def test_bad_env_value_falls_back_to_legacy_logs_once_and_tags_the_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AURUM_MIGRATION_M_PHASE", "sideways")
    fetch, ran = make()
    set_phase(tmp_path, Phase.SIMPLIFIED)
    with caplog.at_level(logging.ERROR), testing.capture(state_dir=tmp_path) as telemetry:
        fetch(1)
        fetch(2)
        assert ran == ["legacy", "legacy"]
        spans = telemetry.spans()
        assert all(s.attributes["aurum.migration.config_error"] == "AURUM_MIGRATION_M_PHASE"  # type: ignore[index]
                   for s in spans)
    assert caplog.text.count("AURUM_MIGRATION_M_PHASE='sideways' is not valid") == 1


def test_a_phase_change_reaches_the_call_path(tmp_path: Path) -> None:
    fetch, ran = make()
    with testing.capture(state_dir=tmp_path):
        fetch(1)
        set_phase(tmp_path, Phase.SIMPLIFIED)
        fetch(1)
    assert ran == ["legacy", "simplified"]


def test_with_options_makes_a_new_routed_function(tmp_path: Path) -> None:
    fetch, _ = make()
    writer = fetch.with_options(writes=True)
    assert writer.options.writes and not fetch.options.writes
    assert writer.simplified_implementation is fetch.simplified_implementation


@pytest.mark.parametrize("phase", ["simplified", "hybrid"])
def test_migrate_client_routes_bound_methods(tmp_path: Path, phase: str) -> None:
    from aurum_otel.client import migrate_client

    class Legacy:
        def read(self, key: str) -> str:
            return f"legacy {key}"

        def write(self, key: str) -> str:
            return f"legacy wrote {key}"

    class Simple:
        def read(self, key: str) -> str:
            return f"simple {key}"

        def write(self, key: str) -> str:
            return f"simple wrote {key}"

    client = migrate_client("m", Legacy(), Simple(), methods=("read", "write"), writes=("write",))
    set_phase(tmp_path, Phase(phase), Rollout(percent=100, compare=100))
    with testing.capture(state_dir=tmp_path) as telemetry:
        assert client.read("k") == "simple k"
        assert client.write("k") == "simple wrote k"
        telemetry.wait_for_shadows()
        if phase == "hybrid":  # the read was shadowed on legacy, the write never was
            (shadow,) = telemetry.spans("shadow m")
            assert shadow.attributes["aurum.migration.comparison"] == "mismatch"  # type: ignore[index]
        else:
            assert telemetry.spans("shadow m") == []


def test_migrate_client_routes_async_clients(tmp_path: Path) -> None:
    import asyncio

    from aurum_otel.client import migrate_client

    class Legacy:
        async def read(self, key: str) -> str:
            await asyncio.sleep(0)
            return f"value {key}"

    class Simple:
        async def read(self, key: str) -> str:
            return f"value {key}"

    client = migrate_client("m", Legacy(), Simple(), methods=("read",))
    set_phase(tmp_path, Phase.HYBRID, Rollout(percent=50, compare=100))
    with testing.capture(state_dir=tmp_path) as telemetry:

        async def scenario() -> list[str]:
            values = [await client.read(str(i)) for i in range(20)]
            await asyncio.sleep(0.1)  # the shadows run as tasks on this loop
            return values

        assert asyncio.run(scenario()) == [f"value {i}" for i in range(20)]
        assert telemetry.counts("aurum.migration.calls", role="authoritative") == 20
        assert telemetry.counts("aurum.migration.comparisons", comparison="match") == 20


@pytest.mark.parametrize("bad", ["", "Settings", "a-b", 'a"b', "a\\b", "a\nb", "é", "1st", "x" * 64])
def test_a_name_that_cannot_be_queried_or_mapped_to_its_own_variables_is_refused(bad: str) -> None:
    """Names map one-to-one to AURUM_MIGRATION_<NAME>_* and are label values Prometheus can
    query: anything else is refused at decoration, saying what a name may be."""
    with pytest.raises(MigrationDefinitionError, match="lower-case ASCII letters"):
        migrated(bad)

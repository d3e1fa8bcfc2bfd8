"""The caller contract, as a property (hypothesis): whatever two implementations do, the caller gets
exactly what the authoritative one returned or raised; the shadow never touches the caller's
arguments or instance; every shadow is counted exactly once; threads and memory stay bounded."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.registry import get_registry
from aurum_otel.shadow import ShadowExecutor

BUDGET = 1 << 20


class Unpicklable:
    """A result neither pickle nor deepcopy can copy."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


VALUES: dict[str, Callable[[], Any]] = {
    "int": lambda: 7,
    "dict": lambda: {"a": [1, 2], "b": {"c": "d"}},
    "iterator": lambda: iter([1, 2, 3]),
    "generator": lambda: (i for i in range(3)),
    "unpicklable": Unpicklable,
    "large": lambda: bytearray(300_000),
}
RAISES: dict[str, type[BaseException] | None] = {
    "none": None, "exception": LookupError, "base": SystemExit,
}


@dataclass(frozen=True)
class Side:
    value: str
    raises: str
    mutates: bool
    delay: float  # off the caller's thread only: a slow or hung shadow


sides = st.builds(
    Side,
    value=st.sampled_from(sorted(VALUES)),
    raises=st.sampled_from(sorted(RAISES)),
    mutates=st.booleans(),
    delay=st.sampled_from([0.0, 0.0, 0.01, 0.15]),
)


@dataclass(frozen=True)
class Case:
    legacy: Side
    simplified: Side
    phase: Phase
    percent: int
    compare: int
    fallback: bool
    is_async: bool
    method: bool
    calls: int


cases = st.builds(
    Case,
    legacy=sides,
    simplified=sides,
    phase=st.sampled_from(list(Phase)),
    percent=st.sampled_from([0, 50, 100]),
    compare=st.sampled_from([0, 100]),
    fallback=st.booleans(),
    is_async=st.booleans(),
    method=st.booleans(),
    calls=st.integers(1, 4),
)


class Ledger:
    """What each implementation did, and on which thread."""

    def __init__(self, caller: int) -> None:
        self.caller = caller
        self.lock = threading.Lock()
        self.runs: list[tuple[str, int, Any]] = []  # (implementation, thread, result or error)

    def act(self, name: str, side: Side, bag: list[Any], owner: Any) -> Any:
        on_caller = threading.get_ident() == self.caller
        if not on_caller and side.delay:
            threading.Event().wait(side.delay)
        if side.mutates:
            bag.append((name, threading.get_ident()))
            if owner is not None:
                owner.log.append((name, threading.get_ident()))
        error_type = RAISES[side.raises]
        outcome: Any = error_type(f"{name} failed") if error_type else VALUES[side.value]()
        with self.lock:
            self.runs.append((name, threading.get_ident(), outcome))
        if error_type:
            raise outcome
        return outcome


def _routed(case: Case, ledger: Ledger) -> tuple[Callable[..., Any], Any]:
    """The routed callable for ``case`` (a function or a bound method), and its instance."""
    if case.method:
        class Owner:
            def __init__(self) -> None:
                self.log: list[Any] = []

            if case.is_async:
                @migrated("m", shadow_timeout=0.05)
                async def call(self, bag: list[Any]) -> Any:
                    return ledger.act("legacy", case.legacy, bag, self)

                @call.simplified
                async def _call(self, bag: list[Any]) -> Any:
                    return ledger.act("simplified", case.simplified, bag, self)
            else:
                @migrated("m", shadow_timeout=0.05)
                def call(self, bag: list[Any]) -> Any:
                    return ledger.act("legacy", case.legacy, bag, self)

                @call.simplified
                def _call(self, bag: list[Any]) -> Any:
                    return ledger.act("simplified", case.simplified, bag, self)

        owner = Owner()
        return owner.call, owner
    if case.is_async:
        @migrated("m", shadow_timeout=0.05)
        async def afn(bag: list[Any]) -> Any:
            return ledger.act("legacy", case.legacy, bag, None)

        @afn.simplified
        async def _afn(bag: list[Any]) -> Any:
            return ledger.act("simplified", case.simplified, bag, None)

        return afn, None

    @migrated("m", shadow_timeout=0.05)
    def fn(bag: list[Any]) -> Any:
        return ledger.act("legacy", case.legacy, bag, None)

    @fn.simplified
    def _fn(bag: list[Any]) -> Any:
        return ledger.act("simplified", case.simplified, bag, None)

    return fn, None


def _call(case: Case, routed: Callable[..., Any], bag: list[Any]) -> tuple[Any, BaseException | None]:
    try:
        if case.is_async:
            async def main() -> Any:
                return await routed(bag)
            return asyncio.run(main()), None
        return routed(bag), None
    except BaseException as exc:  # SystemExit included: it is the caller's
        return None, exc


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases)
def test_the_caller_gets_exactly_what_the_authoritative_did(case: Case) -> None:
    state = Path(tempfile.mkdtemp(prefix="aurum-contract-"))
    FileStore.in_dir(state).transition(
        "m", case.phase, Rollout(percent=case.percent, compare=case.compare,
                                 fallback=case.fallback), actor="t", reason="t")
    threads_before = threading.active_count()
    with testing.capture(state_dir=state) as telemetry:
        executor = get_registry()._shadows = ShadowExecutor(workers=2, queue_size=8,
                                                            max_bytes=BUDGET)
        ledger = Ledger(threading.get_ident())
        routed, owner = _routed(case, ledger)
        expected_shadows = 0
        for _ in range(case.calls):
            bag: list[Any] = []
            start = len(ledger.runs)
            value, error = _call(case, routed, bag)
            on_caller = [run for run in ledger.runs[start:] if run[1] == ledger.caller]
            assert on_caller, "the authoritative runs on the caller's thread"
            served = on_caller[-1]  # after a fallback, legacy is the one that served
            if error is None:
                assert value is served[2]
            else:
                assert error is served[2]
            # The shadow never touches the caller's arguments.
            assert all(thread == ledger.caller for _, thread in bag)
            fell_back = len(on_caller) == 2
            if (case.phase is Phase.HYBRID and case.compare == 100 and not fell_back
                    and (error is None or isinstance(error, Exception))):
                expected_shadows += 1
            assert executor.held_bytes() <= BUDGET
        telemetry.wait_for_shadows()
        if owner is not None:  # nor the caller's instance
            assert all(thread == ledger.caller for _, thread in owner.log)
        counted = telemetry.counts("aurum.migration.comparisons")
        assert counted == expected_shadows, (counted, expected_shadows)
        assert executor.held_bytes() == 0
        assert threading.active_count() <= threads_before + executor.workers + 1

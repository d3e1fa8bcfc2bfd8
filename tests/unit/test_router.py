from __future__ import annotations

import random

import pytest

from aurum_otel import Implementation, Phase, PhaseState, Rollout, decide
from aurum_otel.router import bucket


def hybrid(percent: float, compare: float = 0, fallback: bool = False) -> PhaseState:
    return PhaseState(Phase.HYBRID, Rollout(percent=percent, compare=compare, fallback=fallback))


@pytest.mark.parametrize(
    ("state", "authoritative", "shadow"),
    [
        pytest.param(PhaseState(Phase.LEGACY), Implementation.LEGACY, None, id="legacy"),
        pytest.param(PhaseState(Phase.SIMPLIFIED), Implementation.SIMPLIFIED, None,
                     id="simplified"),
        pytest.param(hybrid(0, 100), Implementation.LEGACY, Implementation.SIMPLIFIED,
                     id="hybrid-pure-shadow"),
        pytest.param(hybrid(100, 100), Implementation.SIMPLIFIED, Implementation.LEGACY,
                     id="hybrid-all-simplified-shadow-legacy"),
        pytest.param(hybrid(100, 0), Implementation.SIMPLIFIED, None, id="hybrid-100-no-compare"),
        pytest.param(hybrid(0, 0), Implementation.LEGACY, None, id="hybrid-0-no-compare"),
    ],
)
def test_decision_per_phase(
    state: PhaseState, authoritative: Implementation, shadow: Implementation | None
) -> None:
    decision = decide(state, name="m", key=None, rand=random.random)
    assert decision.phase is state.phase
    assert decision.authoritative is authoritative
    assert decision.shadow is shadow


def test_writes_are_never_shadowed() -> None:
    decision = decide(hybrid(0, 100), name="m", key=None, rand=random.random,
                      shadow_allowed=False)
    assert decision.shadow is None


def test_fallback_only_when_simplified_serves() -> None:
    assert decide(hybrid(100, 0, True), name="m", key=None, rand=random.random).fallback
    assert not decide(hybrid(0, 0, True), name="m", key=None, rand=random.random).fallback


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_split_over_20000_keys_is_within_two_points(percent: float) -> None:
    state = hybrid(percent)
    served = sum(
        decide(state, name="settings", key=f"user-{i}", rand=random.random).authoritative
        is Implementation.SIMPLIFIED
        for i in range(20_000)
    )
    assert abs(served / 20_000 * 100 - percent) <= 2


def test_split_is_sticky_and_monotonic() -> None:
    keys = [f"tenant-{i}" for i in range(5_000)]

    def simplified_keys(percent: float) -> set[str]:
        return {
            k for k in keys
            if decide(hybrid(percent), name="db", key=k, rand=random.random).authoritative
            is Implementation.SIMPLIFIED
        }

    at_10, at_50 = simplified_keys(10), simplified_keys(50)
    assert at_10 and at_10 < at_50  # every key simplified at 10 % is still simplified at 50 %
    assert simplified_keys(10) == at_10  # sticky: same keys every time


def test_bucket_is_stable_across_processes() -> None:
    # blake2b, not Python's salted hash(): a fixed key has a fixed bucket everywhere.
    import os
    import subprocess
    import sys

    probe = "from aurum_otel.router import bucket; print(bucket('settings', 'user-1'))"
    elsewhere = {
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert elsewhere == {str(bucket("settings", "user-1"))}
    assert 0 <= bucket("settings", "user-1") < 10_000
    # Salted by migration name: the two migrations split independently.
    assert [bucket("settings", f"u{i}") for i in range(20)] != [
        bucket("database", f"u{i}") for i in range(20)
    ]


def test_per_call_split_and_compare_use_the_random_source() -> None:
    state = hybrid(30, 20)
    values = iter([0.29, 0.5, 0.31, 0.1])
    first = decide(state, name="m", key=None, rand=lambda: next(values))
    assert first.authoritative is Implementation.SIMPLIFIED and first.shadow is None
    second = decide(state, name="m", key=None, rand=lambda: next(values))
    assert second.authoritative is Implementation.LEGACY
    assert second.shadow is Implementation.SIMPLIFIED


def test_rollout_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="rollout.percent"):
        Rollout(percent=101)
    with pytest.raises(ValueError, match="rollout.compare"):
        Rollout(compare=-1)


def _key_in_bucket(name: str, wanted: int) -> str:
    for i in range(2_000_000):
        if bucket(name, f"k{i}") == wanted:
            return f"k{i}"
    raise AssertionError(f"no key found in bucket {wanted}")


def test_the_split_boundary_is_exclusive() -> None:
    """At 10 % the threshold is bucket 1000: bucket 999 is simplified's, bucket 1000 legacy's
    (a ``<=`` would serve 10.01 % and break monotonic percent steps)."""
    state = PhaseState(Phase.HYBRID, Rollout(percent=10, compare=0))
    on_edge, below = _key_in_bucket("m", 1000), _key_in_bucket("m", 999)
    never = lambda: 0.99  # noqa: E731
    assert decide(state, name="m", key=on_edge, rand=never).authoritative is Implementation.LEGACY
    assert decide(state, name="m", key=below, rand=never).authoritative is Implementation.SIMPLIFIED


def test_the_per_call_split_and_the_compare_share_are_exclusive_at_their_edges() -> None:
    state = PhaseState(Phase.HYBRID, Rollout(percent=10, compare=25))
    edge = decide(state, name="m", key=None, rand=lambda: 0.1)
    assert edge.authoritative is Implementation.LEGACY
    assert edge.shadow is Implementation.SIMPLIFIED  # 0.1 * 100 = 10 < 25
    below = decide(state, name="m", key=None, rand=lambda: 0.0999)
    assert below.authoritative is Implementation.SIMPLIFIED
    at_compare_edge = decide(state, name="m", key=None, rand=lambda: 0.25)
    assert at_compare_edge.shadow is None  # 25.0 < 25 is false: exactly 25 % shadowed

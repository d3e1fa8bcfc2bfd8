"""Tests that kill the surviving mutants of the router's promises (scripts/mutation.sh router).

Promises held here: a key's bucket is the same in every process *and every release* (changing the
hash re-routes every user mid-migration), the smallest percent and compare shares are honoured,
and the compare share is exactly ``compare`` percent of calls.
"""

from __future__ import annotations

import pytest

from aurum_otel import Implementation, Phase, PhaseState, Rollout, decide
from aurum_otel.router import bucket


def _hybrid(percent: float, compare: float) -> PhaseState:
    return PhaseState(Phase.HYBRID, Rollout(percent=percent, compare=compare))


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        pytest.param("settings", "user-1", 9174, id="settings-user"),
        pytest.param("database", "tenant-42", 4856, id="database-tenant"),
        pytest.param("m", 0, 9427, id="int-key"),
        pytest.param("orders", ("a", 1), 725, id="tuple-key"),
    ],
)
def test_a_keys_bucket_is_pinned_across_releases(name: str, key: object, expected: int) -> None:
    """The bucket is a fixed function of (migration, key): a release that changed the digest
    (its size or its byte order) would move users between legacy and simplified mid-rollout."""
    assert bucket(name, key) == expected


def test_the_smallest_percent_serves_bucket_zero() -> None:
    """percent=0.01 is one bucket in 10,000: the key in bucket 0 is served by simplified."""
    state = _hybrid(0.01, 0)
    assert bucket("m", "k1189") == 0
    assert decide(state, name="m", key="k1189", rand=lambda: 0.99).authoritative is (
        Implementation.SIMPLIFIED
    )
    assert decide(state, name="m", key=None, rand=lambda: 0.0).authoritative is (
        Implementation.SIMPLIFIED
    )


def test_a_one_percent_compare_share_shadows_its_calls() -> None:
    """compare=1 shadows 1 % of calls: a draw of 0.005 (0.5 < 1) gets a shadow, 0.01 does not."""
    state = _hybrid(0, 1)
    assert decide(state, name="m", key="k", rand=lambda: 0.005).shadow is Implementation.SIMPLIFIED
    assert decide(state, name="m", key="k", rand=lambda: 0.01).shadow is None


@pytest.mark.parametrize("compare", [10, 50, 90])
def test_the_compare_share_is_exactly_compare_percent(compare: float) -> None:
    """A draw just below compare/100 gets a shadow: the share is compare %, not compare/1.01 %."""
    state = _hybrid(0, compare)
    just_below = compare / 100 - 0.002
    assert decide(state, name="m", key="k", rand=lambda: just_below).shadow is (
        Implementation.SIMPLIFIED
    )
    assert decide(state, name="m", key="k", rand=lambda: compare / 100).shadow is None

"""The Redis store's key layout and record encoding (no server: the codec is pure)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("redis")

from aurum_otel import CorruptStateError, Phase, Rollout
from aurum_otel.stores.model import Transition, WatchState
from aurum_otel.stores.redis_codec import (
    RedisKeys,
    decode_history,
    decode_record,
    encode_record,
    version_of,
)


def _change(**overrides: object) -> Transition:
    fields: dict[str, object] = dict(name="orders", from_phase=Phase.LEGACY, to_phase=Phase.HYBRID,
                                     rollout=Rollout(percent=10, compare=50), actor="ops",
                                     reason="canary", at=1700000000.25, id="abc")
    fields.update(overrides)
    return Transition(**fields)  # type: ignore[arg-type]


def test_the_keys_are_the_documented_layout() -> None:
    keys = RedisKeys("fleet")
    assert (keys.migration("orders"), keys.history("orders"), keys.index, keys.channel,
            keys.transition("abc"), keys.corrupt("orders")) == (
        "fleet:migration:orders", "fleet:history:orders", "fleet:migrations",
        "fleet:transitions", "fleet:transition:abc", "fleet:corrupt:orders")
    assert RedisKeys().channel == "aurum:transitions"


def test_a_written_record_reads_back() -> None:
    change = _change()
    raw = encode_record(change, 7)
    assert raw["version"] == "7" and raw["actor"] == "ops" and raw["reason"] == "canary"
    record = decode_record({**raw, "watch": json.dumps(WatchState("abc", 2).to_dict())}, (change,))
    assert (record.phase, record.rollout, record.updated_at, record.transition_id) == (
        Phase.HYBRID, Rollout(percent=10, compare=50), 1700000000.25, "abc")
    assert record.watch == WatchState("abc", 2) and tuple(record.history) == (change,)
    assert version_of(raw) == 7


@pytest.mark.parametrize("raw", [
    {"rollout": "{}"},
    {"phase": "sideways"},
    {"phase": "hybrid", "rollout": "not json"},
    {"phase": "hybrid", "watch": '{"unhealthy_streak": -1}'},
], ids=["no-phase", "unknown-phase", "bad-rollout", "bad-watch"])
def test_a_record_that_is_not_ours_is_corrupt(raw: dict[str, str]) -> None:
    with pytest.raises(CorruptStateError):
        decode_record(raw, ())


def test_a_bad_version_reads_as_zero() -> None:
    assert version_of({"version": "x"}) == 0 and version_of({}) == 0


def test_unreadable_history_entries_are_skipped_the_rest_kept() -> None:
    good = json.dumps(_change().to_dict())
    history = decode_history("orders", ["{", good.encode(), '{"from": "nowhere"}'], "here")
    assert history == (_change(),)

"""Redis store transitions when the reply to EXEC is lost, and records that cannot be read.

Needs ``scripts/redis.sh start`` and ``eval "$(scripts/redis.sh env)"`` (skips otherwise).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from redis.connection import Connection  # noqa: E402

from aurum_otel import Phase, Rollout, testing  # noqa: E402
from aurum_otel.control import Controller, Step  # noqa: E402
from aurum_otel.health.verdict import RuleResult, Status, Verdict  # noqa: E402
from aurum_otel.hooks import BaseHooks  # noqa: E402
from aurum_otel.stores.model import Transition, WatchState  # noqa: E402
from aurum_otel.stores.redis import RedisStore  # noqa: E402

URL = os.environ.get("AURUM_TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not URL, reason="no Redis: run scripts/redis.sh start and "
                                       "eval \"$(scripts/redis.sh env)\""),
]


@pytest.fixture
def store() -> Iterator[RedisStore]:
    prefix = f"aurum-test-{uuid.uuid4().hex[:10]}"
    made = RedisStore.from_url(f"{URL}{'&' if '?' in URL else '?'}prefix={prefix}")
    yield made
    made.close()
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


class LostReply:
    """Once armed, the next EXEC or EVALSHA sent from the test's thread runs on the server and
    then its reply times out (what a network cut or a slow server does to a transaction)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.lost = 0
        real_pack, real_read = Connection.pack_command, Connection.read_response
        real_pack_many = Connection.pack_commands
        owner = threading.current_thread()
        fault = self

        def pack_command(self: Connection, *args: Any) -> Any:
            if threading.current_thread() is owner:
                fault.last = str(args[0]).upper()
            return real_pack(self, *args)

        def pack_commands(self: Connection, commands: Any) -> Any:
            commands = list(commands)
            if threading.current_thread() is owner and commands:
                fault.last = str(commands[-1][0]).upper()
            return real_pack_many(self, commands)

        def read_response(self: Connection, *args: Any, **kwargs: Any) -> Any:
            reply = real_read(self, *args, **kwargs)
            if (fault.armed and threading.current_thread() is owner
                    and fault.last in ("EXEC", "EVALSHA", "EVAL")):
                fault.armed = False
                fault.lost += 1
                raise redis.exceptions.TimeoutError("Timeout reading from socket")
            return reply

        self.last = ""
        monkeypatch.setattr(Connection, "pack_command", pack_command)
        monkeypatch.setattr(Connection, "pack_commands", pack_commands)
        monkeypatch.setattr(Connection, "read_response", read_response)


@pytest.fixture
def lost_reply(monkeypatch: pytest.MonkeyPatch) -> LostReply:
    return LostReply(monkeypatch)


def _history(store: RedisStore, name: str) -> list[tuple[str, str]]:
    record = store.refresh().get(name)
    assert record is not None
    return [(t.from_phase.value, t.to_phase.value) for t in record.history]


def test_a_transition_whose_reply_was_lost_is_written_once(store: RedisStore,
                                                            lost_reply: LostReply) -> None:
    store.refresh()
    lost_reply.armed = True
    change = store.transition("lost", Phase.HYBRID, actor="op", reason="go")
    assert lost_reply.lost == 1
    assert _history(store, "lost") == [("legacy", "hybrid")]  # was written twice
    assert store.snapshot().get("lost").transition_id == change.id  # type: ignore[union-attr]


def test_a_compare_and_set_that_won_is_reported_as_won(store: RedisStore,
                                                         lost_reply: LostReply) -> None:
    store.refresh()
    lost_reply.armed = True
    change = store.transition("cas", Phase.HYBRID, Rollout(percent=10), actor="op", reason="go",
                              expected=Phase.LEGACY)  # was TransitionConflictError
    assert (change.from_phase, change.to_phase) == (Phase.LEGACY, Phase.HYBRID)
    assert lost_reply.lost == 1
    assert _history(store, "cas") == [("legacy", "hybrid")]


class Unhealthy(Controller):
    def evaluate(self) -> Verdict:
        return Verdict(self.name, Status.UNHEALTHY, (RuleResult(
            "error_rate", Status.UNHEALTHY, "simplified errors 50 %"),))


def test_the_controller_records_a_rollback_whose_reply_was_lost(store: RedisStore,
                                                                 lost_reply: LostReply) -> None:
    seen: list[Transition] = []

    class Hooks(BaseHooks):
        def on_transition(self, change: Transition) -> None:
            seen.append(change)

    with testing.capture(store=store) as telemetry:
        controller = Unhealthy("ctl", store=store, hooks=Hooks(), bake=0, rollback_after=1)
        controller.advance(Step(Phase.HYBRID, Rollout(percent=10)))
        lost_reply.armed = True
        tick = controller.tick()  # a compare-and-set on the step it judged
        assert (tick.action, tick.transition is not None) == ("rolled_back", True)
        assert lost_reply.lost == 1
        assert [(c.from_phase, c.to_phase) for c in seen] == [
            (Phase.LEGACY, Phase.HYBRID), (Phase.HYBRID, Phase.LEGACY)]
        assert telemetry.counts("aurum.migration.transitions", to="legacy") == 1
    assert _history(store, "ctl") == [("legacy", "hybrid"), ("hybrid", "legacy")]


def test_a_bad_record_affects_only_its_own_migration_and_is_kept_aside(store: RedisStore
                                                                       ) -> None:
    store.transition("good", Phase.SIMPLIFIED, actor="op", reason="go")
    store.transition("broken", Phase.SIMPLIFIED, actor="op", reason="go")
    client = redis.Redis.from_url(URL, decode_responses=True)
    client.hset(f"{store.prefix}:migration:broken", mapping={"phase": "turbo", "version": "9"})
    client.hset(f"{store.prefix}:migrations", "broken", "9")
    snapshot = store.refresh()
    assert snapshot.problem is None  # was: one bad record pinned every migration to legacy
    assert snapshot.get("good").phase is Phase.SIMPLIFIED  # type: ignore[union-attr]
    assert "turbo" in snapshot.corrupt["broken"]
    registry = testing.capture(store=store)
    with registry:
        assert registry.registry is not None
        assert registry.registry.migration("good").resolved().state.phase is Phase.SIMPLIFIED
        broken = registry.registry.migration("broken").resolved().state
        assert (broken.phase, broken.problem) == (Phase.LEGACY, "state")
    store.transition("broken", Phase.HYBRID, actor="op", reason="repair")
    kept = client.hgetall(f"{store.prefix}:corrupt:broken")
    client.close()
    assert "turbo" in kept["record"] and kept["error"]
    assert store.refresh().corrupt == {}


def test_a_restarted_watch_keeps_its_unhealthy_streak_in_redis(store: RedisStore) -> None:
    change = store.transition("streak", Phase.HYBRID, Rollout(percent=10), actor="op", reason="go")
    assert store.save_watch("streak", WatchState(change.id, 2))
    assert not store.save_watch("streak", WatchState("an-older-step", 5))
    reader = RedisStore.from_url(f"{URL}{'&' if '?' in URL else '?'}prefix={store.prefix}")
    try:
        record = reader.snapshot().get("streak")
        assert record is not None and record.watch == WatchState(change.id, 2)
    finally:
        reader.close()

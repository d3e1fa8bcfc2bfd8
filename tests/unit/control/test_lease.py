"""One watch per migration: the lease waits, names its holder, and passes on when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aurum_otel import FileStore, Phase, Rollout, testing
from aurum_otel.cli import cli
from aurum_otel.control import Controller, Plan
from aurum_otel.control.lease import FileLease, Holder, LeaseKeeper, LeaseLostError, RedisLease

HOLDER = """
import sys, time
from pathlib import Path
from aurum_otel.control.lease import FileLease, Holder, LeaseKeeper
keeper = LeaseKeeper(FileLease(Path(sys.argv[1]), "svc", Holder(actor="watch@first")))
keeper.acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_two_watchers_one_lease_the_other_takes_over_when_the_holder_dies(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    seen: list[Holder | None] = []
    second = LeaseKeeper(FileLease(tmp_path, "svc", Holder(actor="watch@second")), poll=0.05,
                         on_wait=seen.append)
    acquired: list[float] = []

    def take() -> None:
        if second.acquire():
            acquired.append(time.monotonic())

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.2)
    assert not acquired  # it waits ...
    assert len(seen) == 1 and seen[0] is not None  # ... says who holds the lease, once
    assert (seen[0].pid, seen[0].actor) == (holder.pid, "watch@first")
    killed = time.monotonic()
    os.kill(holder.pid, signal.SIGKILL)
    thread.join(timeout=5)
    takeover = acquired[0] - killed
    print(f"file lease: taken over {takeover * 1000:.0f} ms after the holder was killed")
    assert takeover < 0.5  # the kernel drops the lock at once; the waiter polls every 50 ms
    assert FileLease(tmp_path, "svc", Holder()).holder().actor == "watch@second"  # type: ignore[union-attr]
    second.release()


def test_a_second_watch_says_who_holds_the_lease(tmp_path: Path, holder: subprocess.Popen[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    FileStore.in_dir(tmp_path).transition("svc", Phase.HYBRID, Rollout(0, 100), actor="t",
                                          reason="t")
    testing.reset()
    result = CliRunner().invoke(cli, ["watch", "svc", "--lease-wait", "0.2", "--max-ticks", "1"],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 3, result.output
    assert f"waiting for the lease on svc: held by watch@first pid {holder.pid}" in result.stdout
    assert "another watch drives svc" in result.stderr and "--lease-wait" in result.stderr
    testing.reset()
    shown = CliRunner().invoke(cli, ["plan", "show", "svc"], env={"COLUMNS": "250"})
    assert f"watch: held by watch@first pid {holder.pid}" in shown.stdout


class FakeRedis:
    """SET NX PX, GET and the two lease scripts, with expiry on an injected clock."""

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.data: dict[str, tuple[str, float]] = {}

    def _live(self, key: str) -> str | None:
        value = self.data.get(key)
        return value[0] if value and value[1] > self.now[0] else None

    def set(self, key: str, value: str, nx: bool, px: int) -> bool:
        if nx and self._live(key) is not None:
            return False
        self.data[key] = (value, self.now[0] + px / 1000)
        return True

    def get(self, key: str) -> str | None:
        return self._live(key)

    def eval(self, script: str, _keys: int, key: str, value: str, *args: Any) -> int:
        if self._live(key) != value:
            return 0
        if "PEXPIRE" in script:
            self.data[key] = (value, self.now[0] + int(args[0]) / 1000)
        else:
            del self.data[key]
        return 1


def test_a_redis_lease_expires_after_its_ttl_and_the_old_holder_knows_it_lost_it() -> None:
    now = [0.0]
    redis = FakeRedis(now)
    first = RedisLease(redis, "aurum:lease:svc", Holder(actor="a"), ttl=30)
    second = RedisLease(redis, "aurum:lease:svc", Holder(actor="b"), ttl=30)
    assert first.try_acquire() and not second.try_acquire()
    assert second.holder().actor == "a"  # type: ignore[union-attr]
    now[0] = 20
    assert first.renew()  # renewed: lives until 50
    now[0] = 45
    assert not second.try_acquire()
    now[0] = 50.001  # the holder died at 20: its lease ends a TTL after its last renewal
    assert second.try_acquire()
    assert not first.renew()  # the old holder learns it lost the lease
    first.release()  # releasing a lease that is not ours leaves it alone
    assert second.holder().actor == "b"  # type: ignore[union-attr]


class Lost:
    """A lease whose renewals fail (another watch has it)."""

    ttl = 0.03
    location = "test"

    def try_acquire(self) -> bool:
        return True

    def renew(self) -> bool:
        return False

    def holder(self) -> Holder:
        return Holder(actor="watch@other", pid=4242)

    def release(self) -> None:
        pass


def test_a_watch_that_lost_its_lease_stops_before_writing(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(0, 100), actor="t", reason="t")
    keeper = LeaseKeeper(Lost())
    assert keeper.acquire()
    time.sleep(0.1)  # the renewal thread finds the lease gone
    controller = Controller("svc", store=store, plan=Plan(), bake=0)
    with pytest.raises(LeaseLostError, match="lost its lease .* to watch@other pid 4242"):
        controller.watch(0.01, max_ticks=3, lease=keeper)
    assert store.snapshot().records["svc"].rollout.percent == 0
    keeper.release()

"""What the fleet tests share besides their fixtures (conftest.py): the test server's URL, the
script that stops and starts it, waiting helpers. Needs ``scripts/redis.sh start`` and
``eval "$(scripts/redis.sh env)"``: the tests that talk to Redis skip when ``AURUM_TEST_REDIS_URL``
is absent.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

from aurum_otel.stores.redis import RedisStore  # noqa: E402

URL = os.environ.get("AURUM_TEST_REDIS_URL", "")
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "redis.sh"
# Read at import, before the autouse fixture strips AURUM_* from the environment: the script must
# restart the server these tests were pointed at (AURUM_CACHE_DIR, port), not the default one.
SCRIPT_ENV = {**os.environ}

needs_redis = pytest.mark.skipif(
    not URL, reason="no Redis: run scripts/redis.sh start and eval \"$(scripts/redis.sh env)\""
)



def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def last_actor(store: RedisStore, name: str) -> str | None:
    record = store.snapshot().get(name)
    return record.history[-1].actor if record is not None and record.history else None


def redis_sh(command: str) -> None:
    subprocess.run(["bash", str(SCRIPT), command], env=SCRIPT_ENV, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)



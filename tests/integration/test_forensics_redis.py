"""Captured examples in a capped Redis stream when the phase store is Redis, read by the CLI.

Needs ``scripts/redis.sh start`` and ``eval "$(scripts/redis.sh env)"`` (skips otherwise).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

redis = pytest.importorskip("redis")

from click.testing import CliRunner  # noqa: E402

from aurum_otel.cli import cli  # noqa: E402
from aurum_otel.compare import deep_compare  # noqa: E402
from aurum_otel.flags import GlobalFlags  # noqa: E402
from aurum_otel.forensics.capture import Capturer, Example, Side  # noqa: E402
from aurum_otel.forensics.redis_sink import RedisSink  # noqa: E402
from aurum_otel.forensics.storage import default_sink  # noqa: E402

URL = os.environ.get("AURUM_TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not URL, reason="no Redis: run scripts/redis.sh start and "
                                       "eval \"$(scripts/redis.sh env)\""),
]


@pytest.fixture
def store_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = f"aurum-test-{uuid.uuid4().hex[:10]}"
    url = f"{URL}{'&' if '?' in URL else '?'}prefix={prefix}"
    monkeypatch.setenv("AURUM_STATE_URL", url)
    yield url
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def mismatch(port: int) -> Example:
    mine, theirs = {"port": port, "password": "hunter2"}, {"port": str(port), "password": "x"}
    return Example("settings", "hybrid", 0, 100, (), {"password": "hunter2"},
                   Side("legacy", mine), Side("simplified", theirs),
                   deep_compare(mine, theirs).differences, trace_id=f"{port:032x}")


def test_examples_go_to_a_capped_stream_and_the_cli_reads_them(store_url: str) -> None:
    sink = default_sink(GlobalFlags.from_env())
    assert isinstance(sink, RedisSink)
    sink.max_entries = 50
    capturer = Capturer(sink, per_minute=1000, synchronous=True)
    for port in range(300):
        capturer.record(mismatch(port))
    client = redis.Redis.from_url(URL, decode_responses=True)
    length = client.xlen(sink.key("settings"))
    client.close()
    assert 50 <= length < 300  # MAXLEN ~ trims by whole nodes: capped, not exact
    result = CliRunner().invoke(cli, ["mismatches", "settings", "--json"])
    assert result.exit_code == 0, result.output
    [found] = json.loads(result.output)["signatures"]
    assert found["stored"] == length
    assert found["shape"] == ["password: value", "port: type int!=str"]
    assert "hunter2" not in result.output
    assert found["trace_ids"][0] == f"{299:032x}"

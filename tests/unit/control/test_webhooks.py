"""Webhooks against a real HTTP receiver on 127.0.0.1: never advance without a 2xx, never block."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aurum_otel import FileStore, Phase, Rollout, testing
from aurum_otel.control import Controller, Notifier, Plan, Webhook
from aurum_otel.health.verdict import RuleResult, Status, Verdict


class Receiver:
    """Answers with the next of ``answers`` (``ok``, ``500``, ``slow``), then with the last."""

    def __init__(self) -> None:
        self.answers: list[str] = ["ok"]
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append(body)
                answer = receiver.answers.pop(0) if len(receiver.answers) > 1 else \
                    receiver.answers[0]
                if answer == "slow":
                    time.sleep(0.4)
                code = 500 if answer == "500" else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


class Healthy(Controller):
    def evaluate(self) -> Verdict:
        return Verdict(self.name, Status.HEALTHY, (RuleResult("error_rate", Status.HEALTHY, "ok"),))


def plan(confirm: str, notify: str | None = None) -> Plan:
    hooks = f"  confirm: {{url: '{confirm}', timeout: 0.1}}\n"
    if notify:
        hooks += f"  notify: [{{url: '{notify}', timeout: 0.1, retries: 2}}]\n"
    return Plan.from_yaml("steps:\n  - {percent: 0, compare: 100}\n  - {percent: 10}\n"
                          "webhooks:\n" + hooks)


@pytest.mark.parametrize("answer", ["down", "slow", "500"])
def test_the_controller_never_advances_without_a_2xx_and_never_waits_past_the_timeout(
        tmp_path: Path, receiver: Receiver, answer: str) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(0, 100), actor="t", reason="t")
    receiver.answers = [answer]
    url = closed_port_url() if answer == "down" else receiver.url
    with testing.capture(store=store):
        controller = Healthy("svc", store=store, plan=plan(url), bake=0)
        durations, ticks = [], []
        for _ in range(3):
            started = time.perf_counter()
            ticks.append(controller.tick())
            durations.append(time.perf_counter() - started)
        assert [t.action for t in ticks] == ["held"] * 3
        assert store.snapshot().records["svc"].rollout.percent == 0
        expected = {"down": "is unreachable", "slow": "did not answer within 0.1 s",
                    "500": "answered 500, not 2xx"}[answer]
        assert expected in ticks[0].message and ticks[0].message.endswith("waiting")
        assert max(durations) < 0.35, durations  # bounded by the hook's timeout
        receiver.answers = ["ok"]
        tick = Healthy("svc", store=store, plan=plan(receiver.url), bake=0).tick()
    assert tick.action == "advanced"
    assert store.snapshot().records["svc"].rollout.percent == 10
    asked = receiver.received[-1]
    assert (asked["event"], asked["migration"], asked["next_step"]["label"]) == (
        "confirm_advance", "svc", "hybrid 10% (compare 0%)")


def test_events_are_posted_as_json_and_retried(tmp_path: Path, receiver: Receiver) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(0, 100), actor="t", reason="t")
    notify = Receiver()
    notify.answers = ["500", "500", "ok"]  # the third try lands
    try:
        with testing.capture(store=store):
            controller = Healthy("svc", store=store, plan=plan(receiver.url, notify.url), bake=0)
            assert controller.gates.notifier is not None
            controller.gates.notifier.backoff = 0.01
            assert controller.tick().action == "advanced"
            controller.gates.notifier.close(timeout=2)
    finally:
        notify.close()
    assert [e["event"] for e in notify.received] == ["transition"] * 3
    event = notify.received[-1]
    assert event["migration"] == "svc" and event["transition"]["to"] == "hybrid"
    assert event["transition"]["rollout"]["percent"] == 10
    assert controller.gates.notifier.delivered == 1


@pytest.mark.parametrize("answer", ["down", "slow"])
def test_notifications_never_block_and_the_queue_is_bounded(receiver: Receiver,
                                                           answer: str) -> None:
    receiver.answers = [answer]
    url = closed_port_url() if answer == "down" else receiver.url
    notifier = Notifier([Webhook(url, timeout=0.1, retries=1)], queue_size=10, backoff=0.01)
    started = time.perf_counter()
    for i in range(1000):
        notifier.notify("unhealthy", {"migration": "svc", "n": i})
    elapsed = time.perf_counter() - started
    assert elapsed < 0.2, elapsed  # 1,000 events queued (or dropped) without waiting
    assert notifier.dropped >= 1000 - 10 - 1  # the queue holds 10, the sender one
    notifier.close(timeout=0.1)

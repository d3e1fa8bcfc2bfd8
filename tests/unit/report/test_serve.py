"""The live page: 127.0.0.1 only, read-only, rebuilt in the background, a failure keeps the page."""

from __future__ import annotations

import itertools
import threading

import pytest
import requests

from aurum_otel.errors import ConfigurationError
from aurum_otel.report.serve import LivePage, LiveServer


def test_serves_the_page_and_refuses_every_change() -> None:
    server = LiveServer(lambda: "<html><body>page</body></html>", port=0, refresh=60).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        answer = requests.get(server.url, timeout=5)
        assert answer.status_code == 200 and answer.text == "<html><body>page</body></html>"
        assert answer.headers["Content-Type"].startswith("text/html")
        for method in ("post", "put", "delete", "patch"):
            assert getattr(requests, method)(server.url, timeout=5).status_code == 405
        assert requests.get(server.url + "advance", timeout=5).status_code == 404
    finally:
        server.stop()


def test_only_loopback() -> None:
    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1"):
        LiveServer(lambda: "", port=0, host="0.0.0.0")


def test_rebuilds_in_the_background() -> None:
    counter = itertools.count(1)
    rebuilt = threading.Event()

    def build() -> str:
        n = next(counter)
        if n >= 2:
            rebuilt.set()
        return f"<html><body>build {n}</body></html>"

    server = LiveServer(build, port=0, refresh=0.05).start()
    try:
        assert rebuilt.wait(2)
        assert "build 1" not in requests.get(server.url, timeout=5).text
    finally:
        server.stop()


def test_a_failed_rebuild_keeps_the_last_page_and_says_why() -> None:
    pages = iter(["<html><body>good</body></html>"])

    def build() -> str:
        try:
            return next(pages)
        except StopIteration:
            raise RuntimeError("Prometheus is down") from None

    live = LivePage(build, refresh=5)
    live.rebuild()
    live.rebuild()
    assert live.page() == ('<html><body><p class="error" style="color:#D55E00">Last refresh '
                           'failed: RuntimeError: Prometheus is down; showing the last good page.'
                           '</p>good</body></html>')

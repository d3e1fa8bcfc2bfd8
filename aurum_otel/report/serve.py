"""``aurum-migrate serve``: the report as a live page on 127.0.0.1, rebuilt in the background.

Read-only: only ``GET /`` (the page) and ``GET /healthz``; every other method is refused with 405.
A background thread rebuilds the page every ``refresh`` seconds and the page reloads itself at
the same pace (a meta refresh: no script). A failed rebuild keeps the last good page and shows
the error above it.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aurum_otel.errors import ConfigurationError

logger = logging.getLogger("aurum_otel.report.serve")
HOST = "127.0.0.1"


class LivePage:
    """The page the server hands out; ``build`` makes a new one."""

    def __init__(self, build: Callable[[], str], refresh: float) -> None:
        self._build = build
        self.refresh = refresh
        self._lock = threading.Lock()
        self._page = ""
        self.error: str | None = None
        self.builds = 0

    def rebuild(self) -> None:
        try:
            page = self._build()
        except Exception as exc:  # the server must outlive any source failure
            logger.warning("live page not rebuilt: %s", exc)
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._page, self.error = page, None
            self.builds += 1

    def page(self) -> str:
        with self._lock:
            page, error = self._page, self.error
        if error is None:
            return page
        banner = (f'<p class="error" style="color:#D55E00">Last refresh failed: '
                  f'{html.escape(error)}; showing the last good page.</p>')
        if not page:
            return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta '
                    f'http-equiv="refresh" content="{self.refresh:g}"><title>aurum-otel</title>'
                    f'</head><body>{banner}</body></html>')
        return page.replace("<body>", f"<body>{banner}", 1)


def _handler(live: LivePage) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "aurum-otel"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] in ("/", "/index.html"):
                self._send(HTTPStatus.OK, live.page(), "text/html; charset=utf-8")
            elif self.path == "/healthz":
                self._send(HTTPStatus.OK, "ok\n", "text/plain; charset=utf-8")
            else:
                self._send(HTTPStatus.NOT_FOUND, "not found: the page is at /\n", "text/plain")

        def _refuse(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: only GET\n", "text/plain")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

        def _send(self, status: HTTPStatus, body: str, kind: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug(format, *args)

    return Handler


class LiveServer:
    """The HTTP server and the rebuilding thread; :meth:`stop` ends both."""

    def __init__(self, build: Callable[[], str], *, port: int = 8765, refresh: float = 10.0,
                 host: str = HOST) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigurationError("host", host, "127.0.0.1 (the live page is local only)")
        self.live = LivePage(build, refresh)
        self.refresh = refresh
        self.live.rebuild()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self.live))
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.httpd.serve_forever, name="aurum-serve",
                                          daemon=True),
                         threading.Thread(target=self._refresh, name="aurum-serve-refresh",
                                          daemon=True)]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> LiveServer:
        for thread in self._threads:
            thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh):
            self.live.rebuild()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

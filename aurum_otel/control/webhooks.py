"""Webhooks: a pre-advance confirmation that must answer 2xx, and event notifications.

The confirmation is asked inside the controller's tick, bounded by its timeout: an error, a
timeout or any answer but 2xx means *wait* (the step is held and asked again at the next tick),
never advance. Notifications are JSON POSTs queued (bounded) for a background thread that retries
with a backoff; :meth:`Notifier.notify` never waits for the network and drops (and counts) an
event when the queue is full.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from aurum_otel.control.plan import Webhook

logger = logging.getLogger("aurum_otel.control")

DEFAULT_QUEUE_SIZE = 256
USER_AGENT = "aurum-otel-controller"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the confirmation hook said."""

    confirmed: bool
    message: str


def _redacted(url: str) -> str:
    """The URL without credentials or query (tokens often ride there)."""
    head, _, tail = url.partition("://")
    host_path = tail.rsplit("@", 1)[-1].split("?", 1)[0]
    return f"{head}://{host_path}"


class Confirmer:
    """Asks the confirmation hook before each step is entered."""

    def __init__(self, hook: Webhook, session: requests.Session | None = None) -> None:
        self.hook = hook
        self.session = session or requests.Session()

    def confirm(self, payload: dict[str, Any]) -> Confirmation:
        where = _redacted(self.hook.url)
        try:
            response = self.session.post(self.hook.url, json=payload, timeout=self.hook.timeout,
                                         headers={"User-Agent": USER_AGENT})
        except requests.Timeout:
            return Confirmation(False, f"the confirmation hook {where} did not answer within "
                                       f"{self.hook.timeout:g} s; waiting")
        except requests.RequestException as exc:
            return Confirmation(False, f"the confirmation hook {where} is unreachable "
                                       f"({type(exc).__name__}); waiting")
        if 200 <= response.status_code < 300:
            return Confirmation(True, f"confirmed by {where} ({response.status_code})")
        return Confirmation(False, f"the confirmation hook {where} answered "
                                   f"{response.status_code}, not 2xx; waiting")


class Notifier:
    """Sends events to the notification hooks from a background thread.

    Args:
        hooks: the targets (each with the events it wants, its timeout and retries).
        queue_size: events held at most; more are dropped and counted in :attr:`dropped`.
        backoff: seconds before the first retry, doubled for each next one.
    """

    def __init__(self, hooks: Sequence[Webhook], *, queue_size: int = DEFAULT_QUEUE_SIZE,
                 backoff: float = 0.5, session: requests.Session | None = None) -> None:
        self.hooks = tuple(hooks)
        self.backoff = backoff
        self.session = session or requests.Session()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[Webhook, dict[str, Any]] | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        """Queue ``event`` for every hook that wants it; never blocks."""
        body = {"event": event, **payload}
        for hook in self.hooks:
            if event not in hook.events:
                continue
            self._start()
            try:
                self._queue.put_nowait((hook, body))
            except queue.Full:
                with self._lock:
                    self.dropped += 1
                    dropped = self.dropped
                if dropped == 1 or dropped % 100 == 0:
                    logger.warning("webhook queue full: dropped %d event(s) so far (%s to %s); "
                                   "the receiver is down or slow", dropped, event,
                                   _redacted(hook.url))

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="aurum-webhooks",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, hook: Webhook, body: dict[str, Any]) -> None:
        delay = self.backoff
        for attempt in range(hook.retries + 1):
            if attempt and self._stop.wait(delay):
                break
            delay *= 2
            try:
                response = self.session.post(hook.url, json=body, timeout=hook.timeout,
                                             headers={"User-Agent": USER_AGENT})
                if 200 <= response.status_code < 300:
                    with self._lock:
                        self.delivered += 1
                    return
                why = f"answered {response.status_code}"
            except requests.RequestException as exc:
                why = type(exc).__name__
            logger.debug("webhook %s: %s (attempt %d)", _redacted(hook.url), why, attempt + 1)
        with self._lock:
            self.failed += 1
        logger.warning("webhook %s: event %s not delivered after %d attempt(s)",
                       _redacted(hook.url), body.get("event"), hook.retries + 1)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to drain; ``True`` when it did."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what can be delivered within ``timeout``, then stop retrying and the thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        try:
            self._queue.put(None, timeout=0.1)
        except queue.Full:
            pass


Notify = Callable[[str, dict[str, Any]], None]

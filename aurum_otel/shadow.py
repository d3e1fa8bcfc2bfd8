"""Shadow runs: the other implementation, off the request path, bounded and with a deadline.

Sync shadows run on a small pool of daemon threads fed by a bounded queue; async shadows run as
tasks on the caller's event loop, bounded by a count. A full queue sheds the shadow (counted as
``dropped``); a shadow still queued at its deadline never starts, and one that finishes after it is
counted as ``timeout`` and its result discarded. A hung shadow holds one worker, never the caller.
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol


class HandedOver(Protocol):
    """A queued job that owes a routed call its closing (span end and count)."""

    def close_call(self) -> None: ...


logger = logging.getLogger("aurum_otel.shadow")


class Offer(enum.Enum):
    """What became of a job offered to the executor."""

    STARTING = "starting"  # a worker was free: it starts now
    QUEUED = "queued"  # every worker busy: it waits its turn
    DROPPED = "dropped"  # the queue was full or the executor closed: nothing queued

DEFAULT_WORKERS = 2
DEFAULT_QUEUE_SIZE = 1024


class ShadowExecutor:
    """A bounded pool for shadow work: never blocks the submitter, never grows without bound.

    The hand-off is a C ``SimpleQueue`` and one uncontended lock per job: a ``queue.Queue`` with
    its Python conditions cost the caller several microseconds more per shadow.
    """

    def __init__(self, workers: int = DEFAULT_WORKERS, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        # Registered after the application's providers, so it runs before they flush at exit.
        atexit.register(self.close_handed_over)

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards _in_flight and the thread list
        self._in_flight = 0  # queued or running sync jobs
        self._async_tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._handed: set[HandedOver] = set()  # calls a queued job is to close

    def hand_over(self, item: HandedOver) -> None:
        """``item`` owes a call its closing; :meth:`close_handed_over` pays it if no job does."""
        self._handed.add(item)

    def take_back(self, item: HandedOver) -> bool:
        """Claim ``item``'s closing: ``True`` exactly once, for whoever asks first."""
        try:
            self._handed.remove(item)  # atomic: one claimant wins
        except KeyError:
            return False
        return True

    def close_handed_over(self) -> None:
        """Close every call still handed to a job that has not started (at exit, at shutdown)."""
        for item in list(self._handed):
            item.close_call()

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; ``False`` (and nothing queued) when the queue is full or closed."""
        return self.offer(job) is not Offer.DROPPED

    def offer(self, job: Callable[[], None]) -> Offer:
        """Queue ``job`` and say whether a free worker starts it at once, it waits, or it was
        dropped (the queue full, or the executor closed)."""
        with self._lock:  # with shutdown(): nothing is queued behind the workers' stop signals
            if self._closed or self._in_flight >= self.queue_size + self.workers:
                return Offer.DROPPED  # every worker busy and queue_size jobs waiting
            starting = self._in_flight < self.workers
            self._in_flight += 1
            if len(self._threads) < self.workers:
                self._start_workers()
        self._queue.put(job)
        return Offer.STARTING if starting else Offer.QUEUED

    def submit_async(self, job: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Schedule ``job()`` on the running loop; ``False`` when too many are in flight."""
        if self._closed or len(self._async_tasks) >= self.queue_size:
            return False
        task = asyncio.get_running_loop().create_task(job())
        self._async_tasks.add(task)
        task.add_done_callback(self._async_tasks.discard)
        return True

    def pending(self) -> int:
        """Sync jobs queued and not yet started, plus async shadows in flight."""
        return self._queue.qsize() + len(self._async_tasks)

    def join(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted sync job has finished (for tests and orderly shutdown).

        Polls: the workers never signal anyone, so the call path pays nothing for this.
        """
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while self._in_flight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
        return True

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        atexit.unregister(self.close_handed_over)
        self.close_handed_over()
        for _ in self._threads:
            self._queue.put(None)

    def _start_workers(self) -> None:  # under self._lock
        while len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._work, name=f"aurum-shadow-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        get, lock = self._queue.get, self._lock
        while True:
            job = get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job guards itself; this is the last line
                logger.exception("shadow job failed")
            finally:
                with lock:
                    self._in_flight -= 1

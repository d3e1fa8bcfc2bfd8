"""Shadow runs: the other implementation, off the request path, bounded and with a deadline.

Sync shadows run on a small pool of daemon threads fed by a bounded queue; async shadows run as
tasks on the caller's event loop, bounded by a count. A full queue sheds the shadow (counted as
``dropped``); a shadow still queued at its deadline never starts, and one that finishes after it is
counted as ``timeout`` and its result discarded. A hung shadow holds one worker, never the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger("aurum_otel.shadow")

DEFAULT_WORKERS = 2
DEFAULT_QUEUE_SIZE = 1024


class ShadowExecutor:
    """A bounded pool for shadow work: never blocks the submitter, never grows without bound."""

    def __init__(self, workers: int = DEFAULT_WORKERS, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=queue_size)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._async_tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._idle = threading.Condition()
        self._unfinished = 0
        os.register_at_fork(after_in_child=self._after_fork)

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; ``False`` (and nothing queued) when the queue is full or closed."""
        if self._closed:
            return False
        if len(self._threads) < self.workers:
            self._start_workers()
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._done()
            return False
        return True

    def submit_async(self, job: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Schedule ``job()`` on the running loop; ``False`` when too many are in flight."""
        if self._closed or len(self._async_tasks) >= self.queue_size:
            return False
        task = asyncio.get_running_loop().create_task(job())
        self._async_tasks.add(task)
        task.add_done_callback(self._async_tasks.discard)
        return True

    def pending(self) -> int:
        """Jobs queued (not yet started) plus async shadows in flight."""
        return self._queue.qsize() + len(self._async_tasks)

    def join(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted sync job has finished (for tests and orderly shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self) -> None:
        self._closed = True
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break

    def _start_workers(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"aurum-shadow-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job guards itself; this is the last line
                logger.exception("shadow job failed")
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._unfinished -= 1
            if self._unfinished == 0:
                self._idle.notify_all()

    def _after_fork(self) -> None:
        self._queue = queue.Queue(maxsize=self.queue_size)
        self._threads = []
        self._lock = threading.Lock()
        self._async_tasks = set()
        self._idle = threading.Condition()
        self._unfinished = 0

"""The shadow executor: a bounded pool that runs shadows off the caller's thread and event loop.

Sync and async shadows alike run on a small pool of daemon threads fed by a C ``SimpleQueue``
(an async shadow on the worker's own event loop, never the caller's). Everything it holds is
bounded: the number of jobs (``queue_size``), and the bytes of their snapshots (``max_bytes``);
over either, a shadow is shed (``dropped``). A reaper thread concludes every job at its deadline,
whether it has started or not, so a hung shadow is counted ``timeout`` on time and its snapshots
are released; the hung thread itself is Python's to keep.
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import logging
import math
import os
import queue
import threading
import time
import weakref
from typing import Protocol

logger = logging.getLogger("aurum_otel.shadow")

DEFAULT_WORKERS = 2
DEFAULT_QUEUE_SIZE = 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_BYTES_VARIABLE = "AURUM_SHADOW_MAX_BYTES"


class Job(Protocol):
    """A shadow job, as the executor sees it. Each method guards itself and never raises."""

    deadline: float
    size: int

    def run(self) -> None:
        """Run on a worker (does nothing if the job was already concluded)."""

    def expire(self) -> None:
        """Its deadline passed: conclude it ``timeout`` unless it already was."""

    def cancel(self, reason: str) -> None:
        """It will never run (shutdown): conclude it unless it already was."""


class HandedOver(Protocol):
    """A queued job that owes a routed call its closing (span end and count)."""

    def close_call(self) -> None: ...


class Offer(enum.Enum):
    """What became of a job offered to the executor."""

    STARTING = "starting"
    """A worker was free: it starts now."""
    QUEUED = "queued"
    """Every worker busy: it waits its turn."""
    DROPPED = "dropped"
    """The queue was full: nothing queued."""
    OVER_BUDGET = "memory_budget"
    """Its snapshots would take the executor over ``max_bytes``: nothing queued."""
    CLOSED = "shutdown"
    """The executor is shut down: nothing queued."""

    @property
    def accepted(self) -> bool:
        return self is Offer.STARTING or self is Offer.QUEUED


class ShadowExecutor:
    """A bounded pool for shadow work: never blocks the submitter, never grows without bound.

    Args:
        workers: threads running shadows.
        queue_size: jobs that may wait for a worker.
        max_bytes: bytes of snapshots that queued and running jobs may hold together (default
            ``$AURUM_SHADOW_MAX_BYTES``, else 64 MiB).
    """

    def __init__(self, workers: int = DEFAULT_WORKERS, queue_size: int = DEFAULT_QUEUE_SIZE,
                 max_bytes: int | None = None) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes
        self._clock = time.perf_counter
        self._reset()
        _live.add(self)
        _register_process_hooks()

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards the counts, the heap and the thread list
        self._in_flight = 0  # queued or running jobs
        self._held = 0  # bytes of snapshots held by queued or running jobs
        self._jobs: dict[Job, None] = {}  # queued or running, in order: at most queue+workers
        self._expired: set[Job] = set()  # concluded at their deadline, still queued or running
        self._reaper_wakes = math.inf  # when the reaper means to look next
        self._wake = threading.Event()
        self._closed = False
        self._handed: set[HandedOver] = set()  # calls a queued job is to close

    # ------------------------------------------------------------ the caller's side

    def offer(self, job: Job) -> Offer:
        """Queue ``job``; say whether a free worker starts it at once, it waits, or it was shed."""
        with self._lock:  # with shutdown(): nothing is queued behind the workers' stop signals
            if self._closed:
                return Offer.CLOSED
            if self._in_flight >= self.queue_size + self.workers:
                return Offer.DROPPED  # every worker busy and queue_size jobs waiting
            if job.size and self._held + job.size > self.max_bytes:
                return Offer.OVER_BUDGET
            starting = self._in_flight < self.workers
            self._in_flight += 1
            self._held += job.size
            self._jobs[job] = None
            if job.deadline < self._reaper_wakes:
                self._reaper_wakes = job.deadline
                self._wake.set()
            if len(self._threads) < self.workers:
                self._start_threads()
        self._queue.put(job)
        return Offer.STARTING if starting else Offer.QUEUED

    def release(self, size: int) -> None:
        """A job concluded: its snapshots no longer count against the budget."""
        if size:
            with self._lock:
                self._held -= size

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

    # ------------------------------------------------------------ inspection

    def held_bytes(self) -> int:
        """Bytes of snapshots held by jobs not yet concluded."""
        return self._held

    def pending(self) -> int:
        """Jobs queued and not yet started."""
        return self._queue.qsize()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted job has finished running (for tests and orderly shutdown).

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

    def shutdown(self, reason: str = "shutdown") -> None:
        """Stop taking jobs; jobs still queued are concluded (counted) and never run."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs)
        self.close_handed_over()
        for job in jobs:
            job.cancel(reason)  # a no-op for jobs already concluded
        for _ in self._threads:
            self._queue.put(None)
        self._wake.set()

    # ------------------------------------------------------------ the workers' side

    def _start_threads(self) -> None:  # under self._lock
        if not self._threads:
            threading.Thread(target=self._reap, name="aurum-shadow-reaper", daemon=True).start()
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
                job.run()
            except BaseException:  # a job guards itself; this is the last line
                logger.exception("shadow job failed")
            finally:
                with lock:
                    self._in_flight -= 1
                    self._jobs.pop(job, None)
                    self._expired.discard(job)

    def _reap(self) -> None:
        """Conclude every job at its deadline: queued ones never start, running ones are counted
        ``timeout`` now rather than when (if ever) they finish. It scans the jobs in flight (at
        most ``queue_size + workers``) only when the earliest deadline is due."""
        jobs, expired, lock, wake, clock = (self._jobs, self._expired, self._lock, self._wake,
                                            self._clock)
        while True:
            with lock:
                now = clock()
                due = []
                upcoming = math.inf
                for job in jobs:
                    if job.deadline > now:
                        upcoming = min(upcoming, job.deadline)
                    elif job not in expired:
                        expired.add(job)
                        due.append(job)
                self._reaper_wakes = upcoming
                closed = self._closed
                wake.clear()
            for job in due:
                job.expire()
            if closed:
                return
            wake.wait(None if upcoming == math.inf else max(upcoming - clock(), 0.0))

    def _after_fork(self) -> None:
        self._reset()


def worker_loop() -> asyncio.AbstractEventLoop:
    """This worker thread's own event loop, where async shadows run (never the caller's)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = _thread_state.loop = asyncio.new_event_loop()
    return loop


def default_max_bytes() -> int:
    """``$AURUM_SHADOW_MAX_BYTES`` (a positive whole number of bytes), else 64 MiB."""
    raw = os.environ.get(MAX_BYTES_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError(raw)
    except ValueError:
        logger.warning("%s=%r is not a positive number of bytes; using %d", MAX_BYTES_VARIABLE,
                       raw, DEFAULT_MAX_BYTES)
        return DEFAULT_MAX_BYTES
    return value


_thread_state = threading.local()
_live: weakref.WeakSet[ShadowExecutor] = weakref.WeakSet()
_hooks_registered = False


def _register_process_hooks() -> None:
    """One fork hook and one exit hook for every executor, registered once: a discarded executor
    leaves nothing behind. The exit hook is registered with the first executor, after the
    application's providers, so it runs before they flush."""
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    os.register_at_fork(after_in_child=_after_fork)
    atexit.register(_at_exit)


def _after_fork() -> None:
    for executor in list(_live):
        executor._after_fork()


def _at_exit() -> None:
    for executor in list(_live):
        try:
            executor.shutdown("shutdown")
        except Exception:  # never fail the interpreter's exit
            logger.warning("closing shadow work at exit failed", exc_info=True)



class InlineExecutor(ShadowExecutor):
    """Runs each shadow to completion before the routed call returns: for tests (pytest's hybrid
    mode, ``raise on mismatch``), never for production. The shadow still runs on its own thread
    (so an async shadow gets its own loop and the caller's context is a copy), and is still
    concluded exactly once; the caller simply waits for it."""

    def offer(self, job: Job) -> Offer:
        with self._lock:
            if self._closed:
                return Offer.CLOSED
            self._in_flight += 1
        worker = threading.Thread(target=self._run_one, args=(job,), name="aurum-shadow-inline",
                                  daemon=True)
        worker.start()
        worker.join(max(job.deadline - self._clock(), 0.0) + 0.1)
        if worker.is_alive():  # hung: counted at its deadline, the caller goes on
            job.expire()
        return Offer.STARTING

    def _run_one(self, job: Job) -> None:
        try:
            job.run()
        except BaseException:  # a job guards itself; this is the last line
            logger.exception("shadow job failed")
        finally:
            with self._lock:
                self._in_flight -= 1

"""Capture: what the call path calls on a mismatch or a shadow error, when capture is on.

``record(example)`` is called from the shadow worker thread with raw values. It never raises and
never waits on I/O: it computes the example's signature, spends a token of that signature's
bucket (``per_minute`` examples a minute per signature; the rest are counted and the count rides
on the next stored example as ``suppressed_before``), builds the stored form (encoded, redacted by
the key patterns of :mod:`aurum_otel.redact`, the user's ``redact=`` hook applied, capped at
``max_bytes``) and puts it on a bounded queue. One writer thread appends to the store's backend
(:mod:`aurum_otel.forensics.storage`). A full queue drops the example (counted).

Capture is opt-in per migration: ``@migrated(..., capture=True)`` or
``AURUM_MIGRATION_<NAME>_CAPTURE=1`` (``=0`` turns it off whatever the code says), see
:func:`capture_enabled`.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aurum_otel.errors import ConfigurationError
from aurum_otel.forensics.example import (
    DEFAULT_MAX_BYTES,
    Example,
    RedactHook,
    Rejected,
    Side,
    dumps,
    to_record,
)
from aurum_otel.forensics.signature import order_paths, shape, signature_of
from aurum_otel.forensics.storage import Sink, default_sink
from aurum_otel.names import env_token

__all__ = ["Capturer", "Example", "Side", "capture_enabled", "configure", "flush", "record",
           "reset", "stats"]

logger = logging.getLogger("aurum_otel.forensics")

DEFAULT_PER_MINUTE = 10
DEFAULT_QUEUE_SIZE = 64
MAX_SIGNATURES = 1_024
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_STOP = object()


def capture_enabled(name: str, option: bool = False) -> bool:
    """Whether ``name``'s mismatches are captured: ``AURUM_MIGRATION_<NAME>_CAPTURE`` when set to
    a boolean (1/0, true/false, yes/no, on/off), else ``option`` (the decorator's ``capture=``).

    A value that is not a boolean leaves ``option`` in force (logged once); an invalid name is
    never captured.
    """
    try:
        variable = f"AURUM_MIGRATION_{env_token(name)}_CAPTURE"
    except ConfigurationError:
        return False
    raw = os.environ.get(variable)
    if not raw:
        return bool(option)
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _log_once(f"{variable}={raw!r} is not 0 or 1; capture stays {'on' if option else 'off'}")
    return bool(option)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


@dataclass(slots=True)
class Stats:
    """What became of the examples offered (all counts since start or reset)."""

    queued: int = 0
    written: int = 0
    rate_limited: int = 0
    queue_full: int = 0
    rejected_by_hook: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Capturer:
    """Rate-limits, redacts, caps and queues examples; one writer thread stores them.

    Args:
        sink: where to store (default: the phase store's backend, resolved on first write).
        max_bytes: the most one stored example may take, after redaction (JSON, UTF-8).
        per_minute: examples stored per minute per (migration, signature); also the burst.
        queue_size: examples waiting for the writer at most (the memory bound with ``max_bytes``).
        clock: monotonic seconds (injected in tests).
        synchronous: write in the caller's thread (tests, the CLI); no writer thread.
    """

    def __init__(self, sink: Sink | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 per_minute: int = DEFAULT_PER_MINUTE, queue_size: int = DEFAULT_QUEUE_SIZE,
                 clock: Callable[[], float] = time.monotonic, synchronous: bool = False) -> None:
        if max_bytes < 1024 or per_minute < 1 or queue_size < 1:
            raise ConfigurationError("capture limits", f"max_bytes={max_bytes}, per_minute="
                                     f"{per_minute}, queue_size={queue_size}",
                                     "max_bytes >= 1024, per_minute >= 1, queue_size >= 1")
        self._sink = sink
        self.max_bytes = max_bytes
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._synchronous = synchronous
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats = Stats()

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            self._sink = default_sink()
        return self._sink

    def record(self, example: Example, *, redact: RedactHook | None = None) -> bool:
        """Offer one example; ``True`` if it was queued (or written, when synchronous)."""
        components = shape(
            example.differences,
            order=order_paths(example.authoritative.value, example.shadow.value),
            authoritative_error=example.authoritative.error_type,
            shadow_error=example.shadow.error_type,
        )
        signature = signature_of(components)
        suppressed = self._take(example.name, signature)
        if suppressed is None:
            return False
        try:
            stored = to_record(example, signature, components, redact=redact,
                               max_bytes=self.max_bytes, suppressed=suppressed)
        except Rejected as exc:
            with self._lock:
                self.stats.rejected_by_hook += 1
            _log_once(f"{example.name}: example not captured: {exc}")
            return False
        line = dumps(stored)
        if self._synchronous:
            return self._write(example.name, line)
        self._ensure_thread()
        try:
            self._queue.put_nowait((example.name, line))
        except queue.Full:
            with self._lock:
                self.stats.queue_full += 1
            return False
        with self._lock:
            self.stats.queued += 1
        return True

    def _take(self, name: str, signature: str) -> int | None:
        """Spend a token of the signature's bucket: the count suppressed before, or ``None``."""
        now = self._clock()
        key = (name, signature)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_SIGNATURES:
                    self._buckets.pop(next(iter(self._buckets)))  # the oldest: memory stays bounded
                bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(float(self.per_minute),
                                bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                bucket.suppressed += 1
                self.stats.rate_limited += 1
                return None
            bucket.tokens -= 1.0
            suppressed, bucket.suppressed = bucket.suppressed, 0
            return suppressed

    def _write(self, name: str, line: str) -> bool:
        try:
            self.sink.append(name, line)
        except Exception as exc:  # a full disk or a lost Redis costs examples, never a call
            with self._lock:
                self.stats.failed += 1
                if len(self.stats.errors) < 10:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            _log_once(f"cannot store a mismatch example: {type(exc).__name__}: {exc}")
            return False
        with self._lock:
            self.stats.written += 1
        return True

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="aurum-forensics",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._write(*item)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds until every queued example is written."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 1.0) -> None:
        self.flush(timeout)
        if self._thread is not None:
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                return
            self._thread.join(timeout)


_default: Capturer | None = None
_default_lock = threading.Lock()
_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged and len(_logged) < 100:
        _logged.add(message)
        logger.warning(message)


def default_capturer() -> Capturer:
    global _default
    capturer = _default
    if capturer is None:
        with _default_lock:
            if _default is None:
                _default = Capturer()
            capturer = _default
    return capturer


def record(example: Example, *, redact: RedactHook | None = None) -> None:
    """Capture ``example`` (the call path calls this on a mismatch or shadow error when
    :func:`capture_enabled`). Never raises; returns at once (the write is on another thread)."""
    try:
        default_capturer().record(example, redact=redact)
    except Exception:
        logger.debug("capturing an example of %r failed", getattr(example, "name", "?"),
                     exc_info=True)


def configure(capturer: Capturer | None = None, **options: Any) -> Capturer:
    """Replace the process's capturer (``Capturer(**options)`` unless one is given)."""
    global _default
    new = capturer if capturer is not None else Capturer(**options)
    with _default_lock:
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def flush(timeout: float = 5.0) -> bool:
    """Wait until the examples captured so far are stored (``False`` if ``timeout`` passed)."""
    capturer = _default
    return capturer.flush(timeout) if capturer is not None else True


def stats() -> Stats:
    return default_capturer().stats


def reset() -> None:
    """Forget the capturer and its buckets (tests: the next record builds a new one)."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close(0.5)
    _logged.clear()


atexit.register(lambda: flush(1.0))

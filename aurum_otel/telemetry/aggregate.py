"""The in-process aggregation behind the call counters: per-thread, lock-free on the call path.

Every routed call adds to a cell in a dictionary owned by the calling thread (count, error count,
duration sum and bucket counts), so no call takes a lock or contends with another thread. Readers
(the OpenTelemetry observable counters, the in-process health reader, the metrics file) merge the
threads' tables when they collect. Counts are cumulative since the aggregator was created.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

from aurum_otel.phase import Comparison, Implementation, Outcome, Phase, Role
from aurum_otel.telemetry import semconv

CallKey = tuple[str, Phase, Implementation, Role, Outcome]
ComparisonKey = tuple[str, Phase, Comparison]
# (name, legacy failed, simplified failed, simplified slower: 1 / faster: -1 / tie: 0, ratio bucket)
PairKey = tuple[str, bool, bool, int, int]
RATIO_BOUNDS: tuple[float, ...] = (0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
_RATIO_ONE = RATIO_BOUNDS.index(1.0)  # the bucket of a tie
BOUNDS: tuple[float, ...] = semconv.DURATION_BUCKETS
_SERIES = (
    (Role.AUTHORITATIVE, Outcome.SUCCESS),
    (Role.AUTHORITATIVE, Outcome.ERROR),
    (Role.SHADOW, Outcome.SUCCESS),
    (Role.SHADOW, Outcome.ERROR),
)


class _Cell:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BOUNDS) + 1)


@dataclass(frozen=True, slots=True)
class CallTotals:
    """Cumulative figures of one (name, phase, implementation, role, outcome)."""

    count: int
    seconds: float
    buckets: tuple[int, ...]  # per bucket (not cumulative); the last one is +Inf


KEYS_KEPT = 4096  # distinct routing keys remembered per migration and step (both sides together)


@dataclass(frozen=True, slots=True)
class RoutingKeys:
    """The distinct routing keys one migration's authoritative calls were routed by, in its
    current step (this process; the first :data:`KEYS_KEPT` distinct keys of the step)."""

    percent: float
    legacy: int
    simplified: int
    since: float = 0.0  # the step's start as the store wrote it (0: not the store's)


class _Keys:
    """One step's distinct keys per side, as key digests (never the keys themselves).

    Shared by the threads: ``set.add`` and ``len`` are atomic in CPython, so no lock is taken; a
    race at the cap can keep a few keys over it, never fewer than it. A key a broken router sent
    both ways is counted on both sides.
    """

    __slots__ = ("legacy", "percent", "simplified", "since")

    def __init__(self, percent: float, since: float) -> None:
        self.percent, self.since = percent, since
        self.legacy: set[int] = set()
        self.simplified: set[int] = set()


class _Table:
    __slots__ = ("calls", "comparisons", "pairs", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.calls: dict[CallKey, _Cell] = {}
        self.comparisons: dict[ComparisonKey, int] = {}
        self.pairs: dict[PairKey, int] = {}


class Aggregator:
    """Cumulative call and comparison counts, written per thread and merged on read."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tables: list[_Table] = []
        self._retired = _Table(threading.current_thread())
        self._keys: dict[str, _Keys] = {}

    def _table(self) -> _Table:
        try:
            table: _Table = self._local.table
        except AttributeError:
            table = _Table(threading.current_thread())
            with self._lock:
                # Fold finished threads' tables here too, not only when a reader collects:
                # without a reader, short-lived threads would each leave a table behind.
                self._live_tables()
                self._tables.append(table)
            self._local.table = table
        return table

    @property
    def table_count(self) -> int:
        """Per-thread tables held (live threads' plus the shared total of finished ones)."""
        with self._lock:
            return len(self._tables) + 1

    def record_call(self, key: CallKey, seconds: float) -> None:
        """Count one run of an implementation (the call path: no lock, no allocation after warm-up)."""
        try:  # this thread's table, without a call once it exists
            calls = self._local.table.calls
        except AttributeError:
            calls = self._table().calls
        cell = calls.get(key)
        if cell is None:
            cell = calls[key] = _Cell()
        cell.count += 1
        cell.total += seconds
        cell.buckets[bisect.bisect_left(BOUNDS, seconds)] += 1

    def touch(self, name: str, phase: Phase | None = None) -> None:
        """Create zero-valued series for ``name`` in every phase, before their first calls.

        A backend's ``rate()``/``increase()`` cannot count the first sample of a series, so
        traffic exported in a series' first sample would be invisible to PromQL. Every series a
        verdict or an alert reads (calls per implementation, role and outcome; comparisons) of
        every phase starts at zero from the first call of the migration on, so that the series
        of a later phase already exist when an advance sends traffic to them. (``phase`` is
        accepted for compatibility; all phases are created.)
        """
        table = self._table()
        for each in Phase:
            for implementation in Implementation:
                for role, outcome in _SERIES:
                    if role is Role.AUTHORITATIVE or each is Phase.HYBRID:
                        table.calls.setdefault((name, each, implementation, role, outcome),
                                               _Cell())
        for result in (Comparison.MATCH, Comparison.MISMATCH):
            table.comparisons.setdefault((name, Phase.HYBRID, result), 0)

    def record_key(self, name: str, percent: float, simplified: bool, digest: int,
                   since: float = 0.0) -> None:
        """Remember a routing key's digest on the side it was routed to (the call path: one dict
        look-up and one set insertion). A new step (another percent, or the same percent begun
        again at ``since``, e.g. after a rollback) starts the count afresh."""
        keys = self._keys.get(name)
        if keys is None or keys.percent != percent or keys.since != since:
            keys = self._keys[name] = _Keys(percent, since)
        side = keys.simplified if simplified else keys.legacy
        if digest in side:  # the usual case once a step's keys are known
            return
        if len(keys.legacy) + len(keys.simplified) < KEYS_KEPT:
            side.add(digest)

    def routing_keys(self) -> dict[str, RoutingKeys]:
        """Per migration, its current step's distinct routing keys on each side."""
        return {name: RoutingKeys(keys.percent, len(keys.legacy), len(keys.simplified),
                                  keys.since)
                for name, keys in list(self._keys.items())}

    def record_comparison(self, key: ComparisonKey) -> None:
        try:  # this thread's table, without a call once it exists
            comparisons = self._local.table.comparisons
        except AttributeError:
            comparisons = self._table().comparisons
        comparisons[key] = comparisons.get(key, 0) + 1

    def record_pair(self, name: str, legacy_failed: bool, simplified_failed: bool,
                    legacy_seconds: float, simplified_seconds: float) -> None:
        """Count one shadowed call whose two sides both finished (on the shadow worker): who
        failed, and how their durations compare, for the paired statistics."""
        if simplified_seconds > legacy_seconds:
            order = 1
            bucket = (bisect.bisect_left(RATIO_BOUNDS, simplified_seconds / legacy_seconds)
                      if legacy_seconds > 0 else len(RATIO_BOUNDS))
        elif simplified_seconds < legacy_seconds:
            order = -1
            bucket = bisect.bisect_left(RATIO_BOUNDS, simplified_seconds / legacy_seconds)
        else:
            order, bucket = 0, _RATIO_ONE
        key = (name, legacy_failed, simplified_failed, order, bucket)
        try:  # this thread's table, without a call once it exists
            pairs = self._local.table.pairs
        except AttributeError:
            pairs = self._table().pairs
        pairs[key] = pairs.get(key, 0) + 1

    def pairs(self) -> dict[PairKey, int]:
        """Every pair key's cumulative count, merged across threads."""
        merged: dict[PairKey, int] = {}
        with self._lock:
            for table in self._live_tables():
                for key, count in list(table.pairs.items()):
                    merged[key] = merged.get(key, 0) + count
        return merged

    def calls(self) -> dict[CallKey, CallTotals]:
        """Every call key's cumulative totals, merged across threads."""
        merged: dict[CallKey, list[float]] = {}
        with self._lock:
            for table in self._live_tables():
                for key, cell in list(table.calls.items()):
                    slot = merged.setdefault(key, [0, 0.0, *([0] * len(cell.buckets))])
                    slot[0] += cell.count
                    slot[1] += cell.total
                    for i, count in enumerate(cell.buckets):
                        slot[2 + i] += count
        return {k: CallTotals(int(v[0]), v[1], tuple(int(c) for c in v[2:]))
                for k, v in merged.items()}

    def comparisons(self) -> dict[ComparisonKey, int]:
        """Every comparison key's cumulative count, merged across threads."""
        merged: dict[ComparisonKey, int] = {}
        with self._lock:
            for table in self._live_tables():
                for key, count in list(table.comparisons.items()):
                    merged[key] = merged.get(key, 0) + count
        return merged

    def _live_tables(self) -> list[_Table]:
        # Called under the lock. A finished thread's table is folded into the retired one, so
        # threads that come and go keep the merge cheap.
        alive = []
        for table in self._tables:
            if table.thread.is_alive():
                alive.append(table)
            else:
                _fold(self._retired, table)
        self._tables = alive
        return [self._retired, *alive]


def _fold(into: _Table, table: _Table) -> None:
    for key, cell in table.calls.items():
        target = into.calls.get(key)
        if target is None:
            target = into.calls[key] = _Cell()
        target.count += cell.count
        target.total += cell.total
        for i, count in enumerate(cell.buckets):
            target.buckets[i] += count
    for ckey, count in table.comparisons.items():
        into.comparisons[ckey] = into.comparisons.get(ckey, 0) + count
    for pkey, count in table.pairs.items():
        into.pairs[pkey] = into.pairs.get(pkey, 0) + count

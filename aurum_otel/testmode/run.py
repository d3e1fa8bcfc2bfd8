"""One run in a phase: aurum-otel's registry configured for it, every shadow run inline, and the
comparisons read back from the shadow spans (the public telemetry contract) and judged.

Judgement of a shadow comparison (``aurum.migration.comparison``):

- ``match``, ``ignored``: fine;
- ``mismatch`` (the results differ, or only one side raised), ``error`` (the comparison could not
  be made: the comparator raised, a snapshot could not be rebuilt): the test fails;
- ``timeout``, ``skipped``, ``dropped``: nothing was verified, for a reason that says nothing of
  either implementation (a slow machine, an uncopyable argument): an :class:`AurumShadowWarning`,
  which ``-W error::aurum_otel.pytest_plugin.AurumShadowWarning`` turns into a failure.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aurum_otel import semconv, testing
from aurum_otel.flags import GLOBAL_MONITORING, GUIDE_NAMES
from aurum_otel.phase import Comparison
from aurum_otel.registry import Registry, configure
from aurum_otel.shadow import InlineExecutor
from aurum_otel.testmode.pins import PinnedStore, RunPhase

FAILING = frozenset({Comparison.MISMATCH.value, Comparison.ERROR.value})
FINE = frozenset({Comparison.MATCH.value, "ignored"})

# The per-migration variables that would decide a phase or switch shadows off over the pin.
_FIELDS = ("_ENABLED", "_PHASE", "_PERCENT", "_COMPARE", "_FALLBACK", "_MONITORING")
_GUIDE = frozenset(v for fields in GUIDE_NAMES.values() for v in fields.values())


class AurumShadowWarning(UserWarning):
    """A shadow comparison in test mode verified nothing (``timeout``, ``skipped``, ``dropped``)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of shadow comparison a test made, judged (value-free: names, paths and types)."""

    name: str
    shadow: str
    phase: str
    comparison: str
    detail: str
    count: int = 1

    @property
    def fails(self) -> bool:
        return self.comparison in FAILING

    @property
    def warns(self) -> bool:
        return self.comparison not in FAILING and self.comparison not in FINE

    def line(self) -> str:
        times = f" (x{self.count})" if self.count > 1 else ""
        detail = f": {self.detail}" if self.detail else ""
        return (f"{self.name}: {self.comparison}{times} - {self.shadow} shadow, phase "
                f"{self.phase}{detail}")


def pinning_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables set in ``environ`` that would override a pinned phase or its shadows."""
    return sorted(
        v for v in environ
        if v in _GUIDE or v == GLOBAL_MONITORING
        or (v.startswith("AURUM_MIGRATION_") and v.endswith(_FIELDS))
    )


class PhaseRun:
    """Pins ``phase`` (for ``migrations``, or every migration) while it is started.

    :meth:`start` configures aurum-otel's registry (in-memory store, inline shadows, an in-memory
    span exporter) and takes the pinning variables out of the environment through ``environ``
    (pytest's ``MonkeyPatch``, which puts them back); :meth:`stop` resets the registry.
    """

    def __init__(self, phase: RunPhase, migrations: frozenset[str] | None = None) -> None:
        self.store = PinnedStore(phase, migrations)
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.registry: Registry | None = None
        self._seen = 0

    @property
    def phase(self) -> RunPhase:
        return self.store.phase

    def start(self, environ: Any) -> None:
        """Pin the phase; ``environ`` has ``delenv(name)`` (a ``pytest.MonkeyPatch``)."""
        for variable in pinning_variables(os.environ):
            environ.delenv(variable)
        registry = configure(store=self.store, tracer_provider=self.tracer_provider,
                             refresh_interval=0.0)
        # No Registry(shadows=...) option exists yet: the executor is swapped before any call.
        registry._shadows = InlineExecutor()
        self.registry = registry

    def stop(self) -> None:
        testing.reset()
        self.registry = None
        self.tracer_provider.shutdown()

    @contextmanager
    def pinned(self, phase: RunPhase, migrations: frozenset[str] | None) -> Iterator[RunPhase]:
        """Pin another phase for the block, then the one before."""
        before = (self.store.phase, self.store.migrations)
        self._repin(phase, migrations)
        try:
            yield phase
        finally:
            self._repin(*before)

    def _repin(self, phase: RunPhase, migrations: frozenset[str] | None) -> None:
        self.store.pin(phase, migrations)
        if self.registry is not None:
            self.registry.invalidate()

    def findings(self) -> list[Finding]:
        """The comparisons made since the last call, one :class:`Finding` per kind, in order."""
        spans = self.exporter.get_finished_spans()[self._seen:]
        self._seen += len(spans)
        kinds: Counter[Finding] = Counter()
        for span in spans:
            attrs = span.attributes or {}
            comparison = attrs.get(semconv.ATTR_COMPARISON)
            if comparison is None:
                continue  # a routed call's own span
            kinds[Finding(
                name=str(attrs.get(semconv.ATTR_NAME, "?")),
                shadow=str(attrs.get(semconv.ATTR_IMPLEMENTATION, "?")),
                phase=str(attrs.get(semconv.ATTR_PHASE, "?")),
                comparison=str(comparison),
                detail=_detail(attrs),
            )] += 1
        return [Finding(f.name, f.shadow, f.phase, f.comparison, f.detail, count)
                for f, count in kinds.items()]


def _detail(attrs: Mapping[str, Any]) -> str:
    parts = []
    reason = attrs.get(semconv.ATTR_COMPARISON_REASON)
    if reason:
        parts.append(f"reason {reason}")
    error = attrs.get(semconv.ATTR_ERROR_TYPE)
    if error:
        parts.append(f"the shadow raised {error}")
    differences = attrs.get(semconv.ATTR_DIFFERENCES)
    if differences:
        parts.append(str(differences))
    return "; ".join(parts)


def report(findings: list[Finding], phase: RunPhase) -> str:
    """The text a failing test shows: one line per kind of comparison that failed or warned."""
    shown = [f for f in findings if f.fails or f.warns]
    compared = sum(f.count for f in findings)
    head = (f"aurum-otel shadow comparisons in phase {phase.value}: "
            f"{sum(f.count for f in shown)} of {compared} not a match")
    return "\n".join([head, *(f"  {f.line()}" for f in shown)])

"""Where the hybrid call's CPU goes, by taking pieces away (the table "Rows 2 and 2g" of
BENCHMARKS.md).

    .venv/bin/python benchmarks/hybrid_parts.py [--n 3000] [--rounds 7]

Every shadow runs inline on the calling thread (as in ``profile_hot_path.py``), so one clock sees
all the work a call causes. Sides, each the median of ``--rounds`` rounds of ``--n`` calls,
measured round-robin, with Python's cyclic garbage collector on (as in a service) and off (what
the collection of the spans waiting in the batch processor's queue costs):

- the hybrid call as it is (row 2's call);
- the same call whose tracer hands out a non-recording span: everything aurum-otel does itself
  (routing, snapshots, hand-off, the shadow run, comparison, counts, pairs, exemplar ids);
- two spans started and ended the way aurum-otel does (``straight.span_starter``,
  ``straight.end_span``), with the contract's attributes, around both implementations:
  aurum-otel's spans, nothing else;
- row 2d's floor: the same two spans through the SDK's public API.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _call_cost import two_spans
from _common import legacy_impl, make_telemetry, simplified_impl
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN
from profile_hot_path import InlineShadows

import aurum_otel
from aurum_otel import FileStore, Phase, Rollout, migrated
from aurum_otel.telemetry.straight import end_span, span_starter

ATTRIBUTES = {"aurum.migration.name": "bench_parts", "aurum.migration.phase": "hybrid",
              "aurum.migration.implementation": "legacy", "aurum.migration.outcome": "success"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    telemetry = make_telemetry()
    store = FileStore.in_dir(tempfile.mkdtemp(prefix="aurum-parts-"))
    registry = aurum_otel.configure(store=store, tracer_provider=telemetry.tracer_provider,
                                    meter_provider=telemetry.meter_provider)
    registry._shadows = InlineShadows()  # measuring only: the shadow runs inline
    store.transition("bench_parts", Phase.HYBRID, Rollout(percent=0, compare=100), actor="bench",
                     reason="bench")
    hybrid = migrated("bench_parts")(legacy_impl)
    hybrid.simplified(simplified_impl)
    hybrid(7)
    instruments = hybrid._self_router.instruments
    start = span_starter(telemetry.tracer_provider.get_tracer("bench.parts"))

    def own_work(user: int = 7) -> Any:
        recording = instruments._start
        instruments._start = lambda name, attributes, context=None: INVALID_SPAN
        try:
            return hybrid(user)
        finally:
            instruments._start = recording

    def straight_spans(user: int = 7) -> Any:
        span = start("migrate bench_parts", ATTRIBUTES)
        value = legacy_impl(user)
        end_span(span)
        shadow = start("shadow bench_parts", ATTRIBUTES, trace.set_span_in_context(span))
        shadow.set_attribute("aurum.migration.comparison",
                             "match" if simplified_impl(user) == value else "mismatch")
        end_span(shadow)
        return value

    sides: dict[str, Callable[..., Any]] = {
        "the hybrid call (row 2's)": hybrid,
        "its spans not recorded: aurum-otel's own work": own_work,
        "two spans as aurum-otel starts them, both implementations": straight_spans,
        "row 2d's floor: two spans through the SDK's public API": two_spans(telemetry),
    }
    for collecting in (True, False):
        (gc.enable if collecting else gc.disable)()
        samples: dict[str, list[float]] = {label: [] for label in sides}
        for _ in range(args.rounds):
            for label, fn in sides.items():
                started = time.process_time()
                for _ in range(args.n):
                    fn(7)
                telemetry.flush()
                samples[label].append((time.process_time() - started) / args.n * 1e6)
        print(f"## garbage collector {'on' if collecting else 'off'}: process-CPU µs per call, "
              f"median of {args.rounds} rounds x {args.n}")
        for label, values in samples.items():
            print(f"{statistics.median(values):8.1f}  {label}")
        print()
    gc.enable()
    aurum_otel.reset()
    telemetry.shutdown()


if __name__ == "__main__":
    main()

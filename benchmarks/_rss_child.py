"""Child process of measure 7: RSS growth over many fully instrumented calls at fixed cardinality.

Prints one JSON object on stdout. Run by ``benchmarks/run.py``; standalone:
``python benchmarks/_rss_child.py --calls 1000000 --warmup 20000``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import NetworkGuard, legacy_impl, make_telemetry, rss_bytes, simplified_impl

import aurum_otel
from aurum_otel import FileStore, Phase, Rollout, migrated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--phase", choices=("legacy", "hybrid"), default="legacy")
    parser.add_argument("--flush-every", type=int, default=1_000)
    args = parser.parse_args()
    guard = NetworkGuard().install()

    telemetry = make_telemetry()
    with tempfile.TemporaryDirectory(prefix="aurum-bench-rss-") as tmp:
        store = FileStore.in_dir(tmp)
        aurum_otel.configure(store=store, tracer_provider=telemetry.tracer_provider,
                             meter_provider=telemetry.meter_provider, refresh_interval=0.5)
        if args.phase == "hybrid":
            store.transition("bench_rss", Phase.HYBRID, Rollout(percent=0, compare=100),
                             actor="bench", reason="bench")
        else:
            store.transition("bench_rss", Phase.LEGACY, actor="bench", reason="bench")

        @migrated("bench_rss")
        def call(user: int = 7) -> dict[str, object]:
            return legacy_impl(user)

        @call.simplified
        def _call_v2(user: int = 7) -> dict[str, object]:
            return simplified_impl(user)

        shadows = aurum_otel.get_registry().shadows

        def settle() -> None:
            shadows.join(60)
            telemetry.flush()
            gc.collect()

        def run(count: int) -> None:
            flush_every = args.flush_every
            for i in range(count):
                call(7)  # fixed cardinality: same arguments, same attribute sets
                if (i + 1) % flush_every == 0:
                    if args.phase == "hybrid":
                        shadows.join(60)
                    telemetry.flush()

        run(args.warmup)
        settle()
        rss_warm = rss_bytes()
        blocks_warm = sys.getallocatedblocks()
        samples = []
        started = time.perf_counter()
        done = 0
        step = max(args.calls // 10, 1)
        while done < args.calls:
            count = min(step, args.calls - done)
            run(count)
            done += count
            settle()
            samples.append((done, rss_bytes(), sys.getallocatedblocks()))
        elapsed = time.perf_counter() - started
        rss_end = rss_bytes()
        blocks_end = sys.getallocatedblocks()
        print(json.dumps({
            "phase": args.phase,
            "calls": args.calls,
            "warmup": args.warmup,
            "seconds": elapsed,
            "calls_per_second": args.calls / elapsed,
            "rss_warm": rss_warm,
            "rss_end": rss_end,
            "growth": rss_end - rss_warm,
            "blocks_warm": blocks_warm,
            "blocks_end": blocks_end,
            "samples": samples,
            "spans_exported": telemetry.span_exporter.exported,
            "connection_attempts": guard.attempts,
        }))
        aurum_otel.reset()
        telemetry.shutdown()


if __name__ == "__main__":
    main()

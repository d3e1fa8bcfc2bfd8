"""Row 2 with the shadow workers placed: on the caller's vCPU, or on the other one (Linux).

    .venv/bin/python benchmarks/row2_affinity.py same|split [--runs 2]

The calling thread is pinned to vCPU 0; each shadow worker pins itself, as it starts, to vCPU 0
(``same``) or vCPU 1 (``split``). The span processor's and metric reader's threads inherit the
caller's. What the hand-off of a shadow to another core costs ("Row 2's two modes" in
BENCHMARKS.md): the same A/B as row 2 (``paired``, 15 rounds of 600 calls, process CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aurum_otel
import aurum_otel.shadow.executor as executor_module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("placement", choices=("same", "split"))
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("row2_affinity.py needs two vCPUs: run it without taskset")
    worker_cpu = 0 if args.placement == "same" else 1
    os.sched_setaffinity(0, {0})  # the calling thread (and the threads it starts from now on)
    work = executor_module.ShadowExecutor._work

    def placed_work(self: executor_module.ShadowExecutor) -> None:
        os.sched_setaffinity(threading.get_native_id(), {worker_cpu})
        work(self)

    executor_module.ShadowExecutor._work = placed_work  # type: ignore[method-assign]

    from _bench import Bench  # after the patch: Bench configures aurum-otel
    from _call_cost import calls, two_spans
    from _common import make_telemetry, paired

    telemetry = make_telemetry()
    bench = Bench(telemetry, tempfile.mkdtemp(prefix="aurum-affinity-"))

    def after() -> None:
        bench.join_shadows()
        telemetry.flush()

    for _ in range(args.runs):
        result = paired(calls(bench.hybrid, after), calls(two_spans(telemetry), telemetry.flush),
                        n=600, rounds=15, warmup=2)
        where = "the caller's" if worker_cpu == 0 else "the other"
        print(f"shadow workers on {where} vCPU: ours "
              f"{result.a_us:.1f} µs, floor {result.b_us:.1f} µs, ratio {result.ratio:.3f} "
              f"(IQR {result.ratio_low:.2f}-{result.ratio_high:.2f})", flush=True)
    aurum_otel.reset()
    telemetry.shutdown()


if __name__ == "__main__":
    main()

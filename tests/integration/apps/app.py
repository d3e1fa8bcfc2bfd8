"""A small application for the pipeline tests: one ``@migrated`` function, driven over stdin.

Run as ``python app.py --service SVC --migration NAME``, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
``AURUM_STATE_DIR`` in the environment. It calls ``setup_telemetry`` (metrics exported every
second), then reads one JSON command per line on stdin and answers one JSON object per line on
stdout (logs go to stderr):

- ``{"op": "config", "error_rate": {"simplified": 0.2}, "latency_ms": {...}, "mismatch_rate": x}``
  sets the injected faults. Failures are deterministic: with rate r, the n-th run of an
  implementation raises ``InjectedFault`` when floor(n * r) steps up, so exactly r of its runs fail.
- ``{"op": "calls", "n": 500}`` makes n calls, each under its own routing key; answers what the
  caller saw (successes, injected errors, unexpected exceptions) and who served.
- ``{"op": "serve", "rate": 100}`` keeps calling in a background thread at about ``rate`` calls per
  second; ``{"op": "stats"}`` reports the totals so far; ``{"op": "stop"}`` ends it.
- ``{"op": "flush"}`` waits for the shadows and flushes spans and metrics to the collector.
- ``{"op": "verdict", "window": 300, "min_samples": 20}`` evaluates the default health rules with
  this process's own ``HealthReader`` (the in-process evaluator) and answers the verdict.
- ``{"op": "rss"}`` answers the resident set size; ``{"op": "exit"}`` shuts down and exits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
import traceback
from typing import Any

from aurum_otel import get_registry, migrated, routing_key, setup_telemetry
from aurum_otel.health import HealthPolicy, default_rules
from aurum_otel.phase import Implementation

IMPLEMENTATIONS = ("legacy", "simplified")


class InjectedFault(RuntimeError):
    """The failure the test asked for; anything else reaching the caller is a bug."""


class Faults:
    """Injected faults and per-implementation counters, shared by callers and shadow workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.error_rate = dict.fromkeys(IMPLEMENTATIONS, 0.0)
        self.latency = dict.fromkeys(IMPLEMENTATIONS, 0.0)
        self.mismatch_rate = 0.0
        self.runs = dict.fromkeys(IMPLEMENTATIONS, 0)
        self.mismatch_runs = 0
        self.local = threading.local()

    def run(self, implementation: str, i: int) -> dict[str, Any]:
        """One run of ``implementation`` on input ``i``: sleep, maybe fail, answer."""
        with self.lock:
            n = self.runs[implementation]
            self.runs[implementation] = n + 1
            rate = self.error_rate[implementation]
            fail = _steps(n, rate)
            delay = self.latency[implementation]
            mismatch = False
            if implementation == "simplified" and self.mismatch_rate > 0:
                mismatch = _steps(self.mismatch_runs, self.mismatch_rate)
                self.mismatch_runs += 1
        if getattr(self.local, "caller", False):
            self.local.served = implementation
        if delay > 0:
            time.sleep(delay)
        if fail:
            raise InjectedFault(f"{implementation} run {n} fails by design")
        return {"i": i, "value": i * 2 + (1 if mismatch else 0)}


def _steps(n: int, rate: float) -> bool:
    """True for exactly ``rate`` of the runs n = 0, 1, 2, ... (evenly spread)."""
    if rate <= 0:
        return False
    return math.floor((n + 1) * rate + 1e-9) > math.floor(n * rate + 1e-9)


class Tally:
    """What the callers saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.ok = 0
        self.injected = dict.fromkeys(IMPLEMENTATIONS, 0)
        self.served = dict.fromkeys(IMPLEMENTATIONS, 0)
        self.unexpected: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"calls": self.calls, "ok": self.ok, "injected_errors": dict(self.injected),
                    "served": dict(self.served), "unexpected": list(self.unexpected[:5]),
                    "unexpected_count": len(self.unexpected)}


class App:
    def __init__(self, service: str, migration: str) -> None:
        self.migration = migration
        self.handle = setup_telemetry(service_name=service, export_interval_millis=1000)
        self.faults = Faults()
        self.next_key = 0
        self.serving: threading.Thread | None = None
        self.stop_serving = threading.Event()
        self.serve_tally = Tally()
        faults = self.faults

        @migrated(migration)
        def lookup(i: int) -> dict[str, Any]:
            return faults.run("legacy", i)

        @lookup.simplified
        def _lookup_simplified(i: int) -> dict[str, Any]:
            return faults.run("simplified", i)

        self.lookup = lookup

    def call(self, tally: Tally) -> None:
        key = self.next_key
        self.next_key += 1
        local = self.faults.local
        local.caller, local.served = True, None
        try:
            with routing_key(key):
                result = self.lookup(key)
            if result.get("i") != key:
                raise AssertionError(f"wrong result {result!r} for {key}")
            outcome = "ok"
        except InjectedFault:
            outcome = "injected"
        except BaseException as exc:  # the library must never add a failure of its own
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            local.caller = False
        served = local.served or "none"
        with tally.lock:
            tally.calls += 1
            if served in tally.served:
                tally.served[served] += 1
            if outcome == "ok":
                tally.ok += 1
            elif outcome == "injected":
                tally.injected[served] = tally.injected.get(served, 0) + 1
            else:
                tally.unexpected.append(outcome)

    def phase(self) -> dict[str, Any]:
        state = get_registry().migration(self.migration).resolved().state
        return {"phase": state.phase.value, "percent": state.rollout.percent,
                "compare": state.rollout.compare}

    def handle_command(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "config":
            with self.faults.lock:
                for impl, rate in command.get("error_rate", {}).items():
                    self.faults.error_rate[impl] = float(rate)
                for impl, ms in command.get("latency_ms", {}).items():
                    self.faults.latency[impl] = float(ms) / 1000
                if "mismatch_rate" in command:
                    self.faults.mismatch_rate = float(command["mismatch_rate"])
            return {"configured": True, **self.phase()}
        if op == "calls":
            tally = Tally()
            started = time.perf_counter()
            for _ in range(int(command["n"])):
                self.call(tally)
            return {**tally.snapshot(), "seconds": time.perf_counter() - started, **self.phase()}
        if op == "serve":
            self.start_serving(float(command.get("rate", 100)))
            return {"serving": True, **self.phase()}
        if op == "stats":
            return {**self.serve_tally.snapshot(), **self.phase(), "time": time.time()}
        if op == "stop":
            self.stop_serving.set()
            if self.serving is not None:
                self.serving.join(10)
            return {**self.serve_tally.snapshot(), **self.phase()}
        if op == "flush":
            started = time.perf_counter()
            shadows_done = get_registry().shadows.join(10)
            self.handle.force_flush(10_000)
            return {"flushed": True, "shadows_done": shadows_done,
                    "seconds": time.perf_counter() - started}
        if op == "verdict":
            policy = HealthPolicy(default_rules(int(command.get("min_samples", 20))),
                                  float(command.get("window", 300)))
            verdict = policy.evaluate(self.migration, self.handle.health_reader)
            stats = self.handle.health_reader.stats(self.migration, policy.window)
            return {"verdict": verdict.to_dict(), "figures": figures(stats)}
        if op == "rss":
            return rss()
        if op == "exit":
            self.stop_serving.set()
            self.handle.shutdown()
            return {"exited": True}
        raise ValueError(f"unknown op {op!r}")

    def start_serving(self, rate: float) -> None:
        self.stop_serving.clear()
        interval = 1.0 / rate

        def loop() -> None:
            deadline = time.perf_counter()
            while not self.stop_serving.is_set():
                self.call(self.serve_tally)
                deadline += interval
                pause = deadline - time.perf_counter()
                if pause > 0:
                    self.stop_serving.wait(pause)
                else:
                    deadline = time.perf_counter()

        self.serving = threading.Thread(target=loop, name="serve", daemon=True)
        self.serving.start()


def figures(stats: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"matches": stats.matches, "mismatches": stats.mismatches}
    for impl in IMPLEMENTATIONS:
        side = stats.side(Implementation(impl))
        p95 = stats.quantile(Implementation(impl), 0.95)
        out[impl] = {"calls": side.calls, "errors": side.errors, "error_rate": side.error_rate,
                     "p95_ms": None if p95 is None else p95 * 1000}
    return out


def rss() -> dict[str, Any]:
    values: dict[str, Any] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])  # kB
    return {"rss_kb": values.get("VmRSS"), "peak_rss_kb": values.get("VmHWM"),
            "threads": threading.active_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--service", required=True)
    parser.add_argument("--migration", required=True)
    args = parser.parse_args()
    app = App(args.service, args.migration)
    print(json.dumps({"ready": True, "pid": os.getpid(), **app.phase()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            answer = app.handle_command(command)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            command = {}
        print(json.dumps(answer), flush=True)
        if command.get("op") == "exit":
            return


if __name__ == "__main__":
    main()

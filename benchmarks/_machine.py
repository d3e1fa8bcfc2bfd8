"""Where the figures came from: the machine, the load, the commit and the package versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

PACKAGES = (
    "aurum-otel",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "wrapt",
    "pydantic",
    "pydantic-settings",
    "launchdarkly-server-sdk",
    "launchdarkly-eventsource",
    "launchdarkly-server-sdk-otel",
    "laboratory",
    "pyperf",
)


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, str]:
    info = {
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
    }
    try:
        info["load average (1/5/15 min) at start"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    info.update(_pyperf_metadata())
    info.update(_git())
    return info


def _git() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "aurum_otel"],
                               capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    changed = len([line for line in dirty.splitlines() if line.strip()])
    suffix = f" (+{changed} uncommitted files in aurum_otel/)" if changed else ""
    return {"aurum-otel commit": head + suffix}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _pyperf_metadata() -> dict[str, str]:
    """What ``python -m pyperf collect_metadata`` says about the machine (if pyperf is installed)."""
    wanted = ("cpu_model_name", "cpu_freq", "cpu_config", "cpu_count", "runnable_threads", "timer")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pyperf", "collect_metadata"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.splitlines():
        if line.startswith("- ") and ":" in line:
            key, value = line[2:].split(":", 1)
            if key in wanted:
                found[f"pyperf {key}"] = value.strip()
    return found

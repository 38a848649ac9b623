"""Start-up: from the `podman start` call to the first answer through the proxy.

The container is created beforehand. This thread polls every POLL seconds: has
the call returned, does the proxy answer 200, and for cephaloinit, /ready.
"""

from __future__ import annotations

import subprocess
import time

from benchmarks import load
from benchmarks.containers import PODMAN, START_TIMEOUT, Container, init_pid
from benchmarks.samples import Samples, record

POLL = 0.002  # seconds


def measure_startup(container: Container, samples: Samples, origin_url: str) -> None:
    t0 = time.perf_counter()
    starter = subprocess.Popen([PODMAN, "start", container.name], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    probes = {
        "start_call": lambda: starter.poll() is not None,
        "start_proxy": lambda: load.try_get(container.proxy_port, origin_url),
    }
    if container.health_port:
        probes["start_ready"] = lambda: load.try_get(container.health_port, "/ready")
    times = first_true(probes, t0, t0 + START_TIMEOUT)
    if starter.wait() != 0:
        raise RuntimeError(f"podman start {container.name}: {starter.stderr.read().decode()}")
    missing = [key for key in probes if key not in times]
    if missing:
        raise RuntimeError(f"{container.name}: no answer within {START_TIMEOUT:g} s for {', '.join(missing)}")
    for key in probes:
        record(samples, key, container.system.key, times[key] * 1e3)
    init_pid(container)


def first_true(probes: dict, t0: float, deadline: float) -> dict[str, float]:
    """Seconds from t0 until each probe first returned true, polling all of
    them in turn every POLL seconds until each has or the deadline passes."""
    times: dict[str, float] = {}
    while time.perf_counter() < deadline:
        for key, probe in probes.items():
            if key not in times and probe():
                times[key] = time.perf_counter() - t0
        if len(times) == len(probes):
            break
        time.sleep(POLL)
    return times

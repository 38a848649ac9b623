"""Crash detection: kill -9 of Squid from the host; the time until the
container's PID 1 has exited, seen through a pidfd (no polling)."""

from __future__ import annotations

import os
import select
import signal
import time

from benchmarks.containers import Container, podman, squid_pid
from benchmarks.samples import Samples, record

EXIT_TIMEOUT = 30  # seconds


def measure_crash(container: Container, samples: Samples) -> None:
    key = container.system.key
    target = squid_pid(container)
    pidfd = os.pidfd_open(container.pid)
    try:
        t0 = time.perf_counter()
        os.kill(target, signal.SIGKILL)
        ready, _, _ = select.select([pidfd], [], [], EXIT_TIMEOUT)
        elapsed = time.perf_counter() - t0
    finally:
        os.close(pidfd)
    code = podman("wait", container.name, timeout=60)
    record(samples, "crash", key, elapsed * 1e3 if ready else f"no exit in {EXIT_TIMEOUT} s")
    record(samples, "crash_code", key, int(code))

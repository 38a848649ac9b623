"""Stops: `podman stop -t TIMEOUT` of idle containers and of containers with a
download in flight, issued 0.15 s apart, each timed on its own."""

from __future__ import annotations

import subprocess
import threading
import time

from benchmarks import load
from benchmarks.containers import PODMAN, Container, podman
from benchmarks.samples import Samples, record

STAGGER = 0.15  # seconds between two stops


def stop(container: Container, timeout: int, out: dict) -> None:
    t0 = time.perf_counter()
    subprocess.run([PODMAN, "stop", "-t", str(timeout), container.name],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out["ms"] = (time.perf_counter() - t0) * 1e3
    out["code"] = int(podman("inspect", "-f", "{{.State.ExitCode}}", container.name))


def start_downloads(busy: list[Container], slow_url: str) -> dict[str, tuple[threading.Thread, dict]]:
    """A download through each busy container's proxy; back once each has begun."""
    downloads = {}
    for c in busy:
        started, result = threading.Event(), {}
        thread = threading.Thread(target=load.download, args=(c.proxy_port, slow_url, started, result))
        thread.start()
        downloads[c.name] = (thread, started, result)
    for _, started, _ in downloads.values():
        started.wait(30)
    return {name: (thread, result) for name, (thread, _, result) in downloads.items()}


def measure_stops(idle: list[Container], busy: list[Container], slow_url: str, stop_timeout: int,
                  samples: Samples) -> None:
    downloads = start_downloads(busy, slow_url)
    stops = []
    for c in [x for pair in zip(idle, busy) for x in pair]:
        out: dict = {}
        thread = threading.Thread(target=stop, args=(c, stop_timeout, out))
        thread.start()
        stops.append((c, thread, out))
        time.sleep(STAGGER)
    for c, thread, out in stops:
        thread.join()
        key = c.system.key
        if c in idle:
            record(samples, "stop_idle", key, out["ms"])
            record(samples, "stop_idle_code", key, out["code"])
        else:
            download, result = downloads[c.name]
            download.join(60)
            record(samples, "stop_busy", key, out["ms"])
            record(samples, "stop_busy_code", key, out["code"])
            record(samples, "stop_busy_complete", key, "yes" if result.get("complete") else "no")

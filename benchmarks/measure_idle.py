"""The idle window: PID 1's voluntary context switches while every container
of the run sits untouched, then RSS of PID 1 and of the whole container."""

from __future__ import annotations

import time

from benchmarks.containers import Container, process_tree
from benchmarks.samples import Samples, record
from cephaloinit import procfs


def context_switches(pid: int) -> int:
    return int(procfs.status(pid)["voluntary_ctxt_switches"])


def rss_kib(pid: int) -> int:
    """VmRSS in KiB; 0 for a process gone or without memory of its own."""
    return int(procfs.status(pid).get("VmRSS", "0 kB").split()[0])


def measure_idle(containers: list[Container], seconds: float, samples: Samples) -> None:
    before = {c.name: context_switches(c.pid) for c in containers}
    time.sleep(seconds)
    for c in containers:
        record(samples, "idle_ctxt", c.system.key, context_switches(c.pid) - before[c.name])
        record(samples, "rss_pid1", c.system.key, rss_kib(c.pid) / 1024)
        record(samples, "rss_all", c.system.key, sum(rss_kib(p) for p in process_tree(c.pid)) / 1024)

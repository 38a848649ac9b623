"""Reaping: COUNT processes orphaned to a container's PID 1, released at once.

`nsenter --pid` runs the host's python3 in the container's PID namespace (the
peers have no Python); it forks a process that forks COUNT children blocked on
a pipe and exits, so they are re-parented to PID 1. Closing the pipe lets them
all exit; timed until none is left in /proc (a zombie still is).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.containers import Container, process_tree
from benchmarks.samples import Samples, record
from cephaloinit import procfs

REAP_TIMEOUT = 30.0  # seconds

ORPHANS = r"""
import os, sys
n = int(sys.argv[1])
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(w)
    for _ in range(n):
        if os.fork() == 0:
            os.read(r, 1)   # until the writer closes: then every orphan exits at once
            os._exit(0)
    os._exit(0)             # the orphans go to the namespace's PID 1
os.close(r)
os.waitpid(middle, 0)
print("orphaned", flush=True)
sys.stdin.read()            # benchmarks/run closes our stdin: the pipe closes as we exit
"""


def measure_reaping(container: Container, count: int, samples: Samples) -> None:
    before = set(process_tree(container.pid))  # the health server is a python3 child too
    helper = subprocess.Popen(
        ["nsenter", "--target", str(container.pid), "--pid", "--",
         sys.executable, "-I", "-S", "-c", ORPHANS, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if helper.stdout.readline().strip() != "orphaned":
            raise RuntimeError(f"{container.name}: the orphan helper failed")
        orphans = [s.pid for s in procfs.children(container.pid)
                   if s.pid not in before and s.comm.startswith("python")]
        if len(orphans) < count:
            raise RuntimeError(f"{container.name}: only {len(orphans)} of {count} orphans were "
                               f"re-parented to PID 1 ({container.pid})")
        t0 = time.perf_counter()
        helper.stdin.close()
        left = still_in_proc(orphans, t0 + REAP_TIMEOUT)
        elapsed = time.perf_counter() - t0
        record(samples, "reap", container.system.key, elapsed * 1e3 if not left else f"{len(left)} left")
    finally:
        helper.kill()
        helper.wait()


def still_in_proc(pids: list[int], deadline: float) -> list[int]:
    """Poll every millisecond until none of ``pids`` has a /proc entry or the
    deadline passes; those left. A stat() per PID, not a read: the poll
    must cost the proxy's two cores little while it reaps."""
    left = pids
    while left and time.perf_counter() < deadline:
        left = [pid for pid in left if os.path.exists(f"{procfs.PROC}/{pid}")]
        if left:
            time.sleep(0.001)
    return left

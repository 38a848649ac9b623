"""Squid's `workers 1` against `workers 2`, under cephaloinit and under tini,
side by side in one run (docs/benchmarks.md, "SMP workers").

    benchmarks/run --workers [--rounds 8] [--seconds 5] [--clients 50]

Four containers run at once from the same config (the image's default
policy and container layer, rendered by cephaloinit's own code, plus
`workers N`), mounted at /etc/squid/squid.conf in each:

  cephaloinit, workers 1   the image (it runs `squid -N`)
  cephaloinit, workers 2   the image (it runs `squid --foreground -d 0`)
  tini, workers 1          the tini peer (benchmarks/peers/Dockerfile): tini -- squid -N
  tini, workers 2          the same peer: tini -- squid --foreground -d 0

Idle RSS is read once every container has served its first request and sat
idle for a few seconds: per worker (the mean VmRSS of the processes that
serve: the one Squid of -N, else each `(squid-N)` kid), and the PSS of the
whole Squid tree (shared memory counted once). Throughput: ab -k through
each proxy for a cached 1 KiB object, the systems in an order rotated from
one round to the next; ab is pinned to CPU 1 with taskset so that it takes
one core and leaves the kernel free to place Squid's processes; the
containers are not pinned.
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from benchmarks import load  # noqa: E402
from benchmarks.containers import (BASE_IMAGE, IMAGE, PODMAN, podman, render_peer_config,  # noqa: E402
                                   start_origin)
from benchmarks.measure_idle import rss_kib  # noqa: E402
from cephaloinit import procfs, smp, squid  # noqa: E402
from cephaloinit.settings import Settings  # noqa: E402

PEER_IMAGE = os.environ.get("PEER_IMAGE", "localhost/cephaloproxy-peer-workers:tini")
RUN_ID = f"cpworkers-{os.getpid()}"
LABEL = f"io.cephaloproxy.bench={RUN_ID}"
LOAD_CPU = "1"  # ab runs here (taskset -c)
SYSTEMS = (("cephaloinit", 1), ("cephaloinit", 2), ("tini", 1), ("tini", 2))


def say(message: str) -> None:
    print(f"workers: {message}", file=sys.stderr, flush=True)


def config_text(workers: int) -> str:
    """The whole config both systems run: the peers' config of the main table
    (cephaloinit's container layer around the image's default policy) and
    `workers`. Under cephaloinit the layer is rendered around it again, with
    the same values."""
    return f"{render_peer_config()}\nworkers {workers}\n"


def build_peer(directory: str) -> None:
    if subprocess.run([PODMAN, "image", "exists", IMAGE]).returncode != 0:
        raise SystemExit(f"workers: {IMAGE} is missing: make image (or set IMAGE)")
    with open(os.path.join(directory, "squid.conf"), "w") as file:
        file.write(config_text(1))
    with open(os.path.join(HERE, "peers", "Dockerfile")) as source, \
            open(os.path.join(directory, "Dockerfile"), "w") as target:
        target.write(source.read())
    say(f"building {PEER_IMAGE} (cached layers after the first time)")
    subprocess.run([PODMAN, "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
                    "--target", "tini", "-t", PEER_IMAGE, directory],
                   check=True, stdout=subprocess.DEVNULL)


class Container:
    def __init__(self, system: str, workers: int, directory: str):
        self.system, self.workers = system, workers
        self.name = f"{RUN_ID}-{system}-w{workers}"
        conf = os.path.join(directory, f"squid-w{workers}.conf")
        with open(conf, "w") as file:
            file.write(config_text(workers))
        os.chmod(conf, 0o644)
        args = ["run", "-d", "--name", self.name, "--label", LABEL, "--no-healthcheck",
                "-p", "127.0.0.1::3128", "-v", f"{conf}:/etc/squid/squid.conf:ro"]
        if system == "tini":
            argv = squid.run_command(Settings(), "/etc/squid/squid.conf", workers)
            args += ["--entrypoint", "/usr/bin/tini", PEER_IMAGE, "--", *argv]
        else:
            args += [IMAGE]
        podman(*args)
        self.port = int(podman("port", self.name, "3128/tcp").rsplit(":", 1)[1])
        self.pid = int(podman("inspect", "-f", "{{.State.Pid}}", self.name))

    @property
    def title(self) -> str:
        return f"{self.system}, workers {self.workers}"

    def serving(self) -> list[int]:
        """The Squid processes that serve: -N's one process, else the workers."""
        tree = self.squid_tree()
        if self.workers == 1:
            return tree
        return [pid for pid in tree
                if (name := smp.kid_name(procfs.cmdline(pid))) and smp.WORKER_NAME.fullmatch(name)]

    def squid_tree(self) -> list[int]:
        return [s.pid for s in procfs.all_stats() if s.comm == "squid" and self._below(s.pid)]

    def _below(self, pid: int) -> bool:
        while pid > 1:
            if pid == self.pid:
                return True
            found = procfs.stat(pid)
            if found is None:
                return False
            pid = found.ppid
        return False


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_serving(container: Container, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if load.try_get(container.port, url) and len(container.serving()) == container.workers:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{container.title} did not serve within {timeout:g}s:\n"
                       f"{podman('logs', container.name, check=False)[-2000:]}")


def spread(values: list[float], digits: int = 0) -> str:
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def ratio(top: list[float], bottom: list[float]) -> str:
    if not top or not bottom:
        return "n/a"
    return f"{statistics.median(top) / statistics.median(bottom):.2f}×"


def paired(top: list[float], bottom: list[float]) -> str:
    """The median (min–max) of the per-round ratios: two systems measured
    minutes apart on a shared machine drift apart; within a round they do not."""
    ratios = [t / b for t, b in zip(top, bottom) if b]
    if not ratios:
        return "n/a"
    return f"{spread(ratios, 2)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="each ab run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before RSS is read")
    options = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="cpworkers-")
    os.chmod(directory, 0o755)
    build_peer(directory)
    url = start_origin(download_seconds=1).obj_url
    atexit.register(lambda: podman("rm", "-f", "-t", "0", *podman(
        "ps", "-aq", "--filter", f"label={LABEL}", check=False).split(), check=False))

    containers = [Container(system, workers, directory) for system, workers in SYSTEMS]
    for container in containers:
        wait_serving(container, url)
    say(f"all four serve; idle {options.idle:g}s, then RSS")
    time.sleep(options.idle)  # the idle window being measured, not a wait for an event
    rss = {c.title: [rss_kib(pid) / 1024 for pid in c.serving()] for c in containers}
    pss = {c.title: [sum(pss_kib(pid) for pid in c.squid_tree()) / 1024] for c in containers}

    load_before = os.getloadavg()[0]
    rps: dict[str, list[float]] = {c.title: [] for c in containers}
    for round_number in range(options.rounds):
        shift = round_number % len(containers)
        for container in containers[shift:] + containers[:shift]:
            value = load.ab(container.port, url, options.seconds, options.clients, cpu=LOAD_CPU)
            rps[container.title].append(value)
            say(f"round {round_number + 1}: {container.title}: {value:.0f} req/s")

    load_after = os.getloadavg()[0]
    titles = [c.title for c in containers]
    print(f"\nSquid workers 1 and 2, cephaloinit and tini; {options.rounds} rounds of "
          f"ab -k -c {options.clients} -t {options.seconds:g} pinned to CPU {LOAD_CPU} "
          f"(taskset), {os.cpu_count()} CPUs, 1-minute load average {load_before:.1f} before "
          f"the rounds and {load_after:.1f} after; median (min–max)\n")
    print("| | " + " | ".join(titles) + " | workers 2 / 1, cephaloinit | workers 2 / 1, tini |")
    print("|---|" + "---|" * (len(titles) + 2))
    w1c, w2c, w1t, w2t = titles
    print("| throughput, req/s | " + " | ".join(spread(rps[t]) for t in titles)
          + f" | {ratio(rps[w2c], rps[w1c])} | {ratio(rps[w2t], rps[w1t])} |")
    print("| throughput, per-round ratio | | | | | "
          f"{paired(rps[w2c], rps[w1c])} | {paired(rps[w2t], rps[w1t])} |")
    print("| idle RSS per worker, MiB | " + " | ".join(spread(rss[t], 1) for t in titles)
          + f" | {ratio(rss[w2c], rss[w1c])} | {ratio(rss[w2t], rss[w1t])} |")
    print("| idle PSS, all Squid processes, MiB | " + " | ".join(spread(pss[t], 1) for t in titles)
          + f" | {ratio(pss[w2c], pss[w1c])} | {ratio(pss[w2t], pss[w1t])} |")
    print(f"\ncephaloinit / tini, per-round ratio of throughput: at workers 2 "
          f"{paired(rps[w2c], rps[w2t])}; at workers 1 {paired(rps[w1c], rps[w1t])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
